"""The guide's out-of-session agent, with the Python package dual-auth==1.0.1, over HTTPS.

Configuration as the guide's (DUAL_AUTH_VENDOR, KEYCLOAK_TOKEN_URL, ...), plus
APP_PUBLIC_KEY_PATH, AGENT_ENDPOINT, API_URL, AGENT_SCOPE, AGENT_PORT, AGENT_TLS_CERT,
AGENT_TLS_KEY; REQUESTS_CA_BUNDLE for the identity provider's and the API's CA.
Prints READY when listening.
"""
import json
import os
import ssl
from http.server import BaseHTTPRequestHandler, HTTPServer

from dual_auth import (Auth0Adapter, EntraIDAdapter, InSessionAPICall, KeycloakAdapter, OktaAdapter,
                       OutOfSessionTokenRequest, get_config, get_vendor)

ADAPTERS = {"keycloak": KeycloakAdapter, "auth0": Auth0Adapter, "okta": OktaAdapter, "entraid": EntraIDAdapter}
TOKENS = OutOfSessionTokenRequest(adapter=ADAPTERS[get_vendor()](get_config()), app_public_key_path=os.environ["APP_PUBLIC_KEY_PATH"])
API = InSessionAPICall(timeout=10)


class Agent(BaseHTTPRequestHandler):
    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        act_jwt = body.get("act_jwt")
        if not act_jwt:
            return self.reply(400, {"error": "Missing act_jwt"})
        try:
            act = TOKENS.receive_and_verify_act_jwt(act_jwt=act_jwt, expected_audience=os.environ["AGENT_ENDPOINT"])
        except ValueError as e:
            return self.reply(401, {"error": f"JWT verification failed: {e}"})
        try:
            token = TOKENS.request_token(agent_id=os.environ["AGENT_CLIENT_ID"], act=act, scope=[os.environ["AGENT_SCOPE"]])
            response = API.call_api(token_response=token, api_url=os.environ["API_URL"] + "/finance/report")
            return self.reply(200, {"status": "success", "human_id": act["sub"], "api_status": response.status_code, "api": response.json()})
        except Exception as e:  # noqa: BLE001 - the test reads the message
            return self.reply(502, {"error": str(e)})

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", int(os.environ["AGENT_PORT"])), Agent)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(os.environ["AGENT_TLS_CERT"], os.environ["AGENT_TLS_KEY"])
server.socket = context.wrap_socket(server.socket, server_side=True)
print("READY", flush=True)
server.serve_forever()
