#!/usr/bin/env python3
"""Peer benchmark: lark-oapi (official Python SDK) verify + decrypt + parse on the same request bytes.

Reads the signed, encrypted request vectors from fixtures/feishu/vectors.json, runs each through
EventDispatcherHandler.do (SHA-256 signature, AES-256-CBC decrypt, token check, model parse, handler call),
and prints one JSON object: median nanoseconds per request for the '审批' event and the card click.
"""
import json
import os
import statistics
import sys
import time

import lark_oapi as lark
from lark_oapi.core.model import RawRequest
from lark_oapi.event.callback.model.p2_card_action_trigger import P2CardActionTriggerResponse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VECTORS = os.path.join(ROOT, "fixtures", "feishu", "vectors.json")


def main():
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    with open(VECTORS, encoding="utf-8") as f:
        v = json.load(f)
    cfg = v["test_config"]
    seen = {"event": 0, "card": 0}

    def on_message(data):
        assert data.event.message.message_id
        seen["event"] += 1

    def on_card(data):
        assert data.event.action.value["type"] == "leave"
        seen["card"] += 1
        return P2CardActionTriggerResponse({})

    handler = (
        lark.EventDispatcherHandler.builder(cfg["encrypt_key"], cfg["verification_token"], lark.LogLevel.ERROR)
        .register_p2_im_message_receive_v1(on_message)
        .register_p2_card_action_trigger(on_card)
        .build()
    )
    vectors = {r["name"]: r for r in v["request_vectors"]}
    cases = {
        "event": vectors["p2p_event_encrypted"],
        "card": vectors["card_action_trigger_leave_encrypted"],
    }
    out = {"peer": "lark-oapi", "version": lark.__version__ if hasattr(lark, "__version__") else "1.7.5"}
    for name, vec in cases.items():
        req = RawRequest()
        req.uri = "/webhook"
        req.headers = dict(vec["headers"])
        req.body = vec["body"].encode("utf-8")
        resp = handler.do(req)
        if resp.status_code != 200 or seen[name] != 1:
            print(f"lark-oapi rejected the {name} vector: {resp.status_code} {resp.content!r}", file=sys.stderr)
            return 1
        samples = []
        for _ in range(repeats):
            start = time.perf_counter_ns()
            for _ in range(iterations):
                handler.do(req)
            samples.append((time.perf_counter_ns() - start) / iterations)
        out[f"{name}_ns"] = statistics.median(samples)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
