"""Drives the reference Python package dual-auth==1.0.1 for the Rust interop tests.

  act_jwt.py sign PRIVATE_KEY_PATH AUDIENCE TTL ACT_JSON   -> prints the act JWT
  act_jwt.py verify PUBLIC_KEY_PATH AUDIENCE TOKEN [TOKEN...] -> one line per token:
      ok <act JSON>   or   err <message>
  act_jwt.py extract CASES_JSON -> one line per case: ok <act JSON>  or  err <message>
      a case is {"session": {...UserSession fields}} or {"claims": {...}}
"""
import json
import sys

from dual_auth import HybridSender, OutOfSessionTokenRequest, UserSession


def main() -> None:
    mode = sys.argv[1]
    if mode == "sign":
        key_path, audience, ttl, act_json = sys.argv[2:6]
        sender = HybridSender(private_key_pem=key_path)
        given = json.loads(act_json)
        session = UserSession(user_email=given["email"], user_name=given.get("name"), user_id=given.get("sub"))
        act = sender.extract_act_from_session(session)
        print(sender.prepare_out_of_session_act(act=act, agent_endpoint=audience, ttl_seconds=int(ttl)))
    elif mode == "verify":
        key_path, audience = sys.argv[2:4]
        # The adapter is not used to verify; one handler for all tokens shares its jti set.
        handler = OutOfSessionTokenRequest(adapter=None, app_public_key_path=key_path)
        for token in sys.argv[4:]:
            try:
                act = handler.receive_and_verify_act_jwt(act_jwt=token, expected_audience=audience)
                print("ok " + json.dumps(act, separators=(",", ":")))
            except ValueError as e:
                print(f"err {e}")
    elif mode == "extract":
        sender = HybridSender()
        for case in json.loads(sys.argv[2]):
            try:
                source = UserSession(**case["session"]) if "session" in case else case["claims"]
                print("ok " + json.dumps(sender.extract_act_from_session(source), separators=(",", ":")))
            except ValueError as e:
                print(f"err {e}")
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
