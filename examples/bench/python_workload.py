"""One benchmark workload with the Python package dual-auth==1.0.1, timed from inside,
printed as one JSON line: the Python side of `cargo xtask bench`.

  python_workload.py sign N PRIVATE_KEY AUDIENCE
  python_workload.py verify N PRIVATE_KEY PUBLIC_KEY AUDIENCE
  python_workload.py flows N CONCURRENCY        (configuration from the environment)
"""
import json
import logging
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor

logging.disable(logging.CRITICAL)  # the package logs every step; we time work, not logging

from dual_auth import (Auth0Adapter, EntraIDAdapter, HybridSender, InSessionAPICall, InSessionTokenRequest,  # noqa: E402
                       KeycloakAdapter, OktaAdapter, OutOfSessionTokenRequest, UserSession, get_config, get_vendor)

SESSION = UserSession(user_email="alice@corp.example.com", user_name="Alice Smith", user_id="user_12345")


def summary(op, latencies, total):
    latencies.sort()
    at = lambda q: latencies[round((len(latencies) - 1) * q)] * 1e6  # noqa: E731
    return {"op": op, "n": len(latencies), "median_us": at(0.5), "p90_us": at(0.9), "total_s": total,
            "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def main():
    mode, n = sys.argv[1], int(sys.argv[2])
    if mode == "sign":
        sender = HybridSender(private_key_pem=sys.argv[3])
        act = sender.extract_act_from_session(SESSION)
        latencies, started = [], time.perf_counter()
        for _ in range(n):
            t = time.perf_counter()
            sender.prepare_out_of_session_act(act=act, agent_endpoint=sys.argv[4], ttl_seconds=60)
            latencies.append(time.perf_counter() - t)
        return summary("sign", latencies, time.perf_counter() - started)
    if mode == "verify":
        sender = HybridSender(private_key_pem=sys.argv[3])
        act = sender.extract_act_from_session(SESSION)
        tokens = [sender.prepare_out_of_session_act(act=act, agent_endpoint=sys.argv[5], ttl_seconds=300) for _ in range(n)]
        handler = OutOfSessionTokenRequest(adapter=None, app_public_key_path=sys.argv[4])
        latencies, started = [], time.perf_counter()
        for token in tokens:
            t = time.perf_counter()
            handler.receive_and_verify_act_jwt(act_jwt=token, expected_audience=sys.argv[5])
            latencies.append(time.perf_counter() - t)
        return summary("verify", latencies, time.perf_counter() - started)
    if mode == "flows":
        concurrency = int(sys.argv[3])
        adapters = {"keycloak": KeycloakAdapter, "auth0": Auth0Adapter, "okta": OktaAdapter, "entraid": EntraIDAdapter}
        adapter = adapters[get_vendor()](get_config())
        tokens, api = InSessionTokenRequest(adapter), InSessionAPICall(timeout=30)
        act = HybridSender().extract_act_from_session(SESSION)
        import os
        url, agent = os.environ["API_URL"] + "/finance/report", os.environ["AGENT_CLIENT_ID"]

        def flow(_):
            t = time.perf_counter()
            token = tokens.request_token(agent_id=agent, act=act, scope=["finance.read"])
            response = api.call_api(token_response=token, api_url=url)
            assert response.status_code == 200, response.status_code
            return time.perf_counter() - t

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            latencies = list(pool.map(flow, range(n)))
        return summary(f"flows c{concurrency} (no cache)", latencies, time.perf_counter() - started)
    raise SystemExit("usage: python_workload.py sign|verify|flows ...")


print(json.dumps(main()))
