"""The guide's out-of-session application step, with the Python package: sign the act JWT
with APP_PRIVATE_KEY_PATH for AGENT_ENDPOINT and POST it there (REQUESTS_CA_BUNDLE for the
agent's CA). Prints the status and the body."""
import os

import requests
from dual_auth import HybridSender, UserSession

sender = HybridSender(private_key_pem=os.environ["APP_PRIVATE_KEY_PATH"])
act = sender.extract_act_from_session(UserSession(user_email="alice@corp.example.com", user_name="Alice Smith", user_id="user_12345"))
act_jwt = sender.prepare_out_of_session_act(act=act, agent_endpoint=os.environ["AGENT_ENDPOINT"], ttl_seconds=60)
response = requests.post(os.environ["AGENT_ENDPOINT"], json={"act_jwt": act_jwt}, timeout=30)
print(response.status_code)
print(response.text)
