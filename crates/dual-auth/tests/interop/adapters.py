"""Drives dual-auth==1.0.1's vendor adapters against a capture endpoint, for the Rust
parity test.

  adapters.py VENDOR TOKEN_URL CONFIG_JSON AGENT_ID ACT_JSON SCOPE...
prints one JSON line: {"token_type", "expires_in", "act_assertion"}.
REQUESTS_CA_BUNDLE must name the capture endpoint's CA.
"""
import json
import sys

from dual_auth import Auth0Adapter, EntraIDAdapter, KeycloakAdapter, OktaAdapter

ADAPTERS = {"keycloak": KeycloakAdapter, "auth0": Auth0Adapter, "okta": OktaAdapter, "entraid": EntraIDAdapter}


def main() -> None:
    vendor, token_url, config_json, agent_id, act_json, *scope = sys.argv[1:]
    config = json.loads(config_json)
    config["token_url"] = token_url
    adapter = ADAPTERS[vendor](config)
    token = adapter.request_token(agent_id, json.loads(act_json), scope)
    print(json.dumps({"token_type": token.token_type, "expires_in": token.expires_in, "act_assertion": token.act_assertion}))


if __name__ == "__main__":
    main()
