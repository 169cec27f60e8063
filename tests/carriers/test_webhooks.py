"""Calls from Twilio, Telnyx and Plivo webhooks routed through Callopt's routing plans, with the
carrier side played by each carrier's helper library. SignalWire's library pins an older twilio
and runs from its own virtualenv: see test_signalwire.py."""

import json
import secrets
import socket
import subprocess
import time
import urllib.parse
from datetime import datetime

import pytest
import requests

from harness import (
    HERE, SIP_SCENARIOS, TRACKING, Api, Answer, PlivoSide, Service, Sipp, TelnyxSide,
    TwilioSide, connect, free_tcp_port, setup_routing, wait_for,
)

CALLER = "+12125550100"
FIRST, SECOND = "+14155550111", "+14155550122"
DIALECTS = [TwilioSide, TelnyxSide, PlivoSide]


def call_id(side):
    return ("CA" if side.name == "twilio" else "v3:") + secrets.token_hex(16)


def ms(rfc3339):
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp() * 1000


def failover_walk(api, side, conn):
    """Incoming → dial the first target → busy → dial the second → answered and talked 42 s →
    the caller hangs up → status callback. Returns the carrier's call id."""
    sid = call_id(side)
    first = side.answer(conn["voice_url"], side.incoming(sid, CALLER, TRACKING))
    assert first.dialled() == ("Number", side.number(FIRST)), first.text
    dial = first.dial().attrib
    assert dial["timeout"] == "20" and dial["method"] == "POST"
    assert dial["callerId"] == side.number(CALLER)
    assert first.action().startswith(api.base + "/carriers/")

    second = side.answer(first.action(), side.dial_ended(sid, "busy"))
    assert second.dialled() == ("Number", side.number(SECOND)), second.text
    assert second.action() != first.action()

    done = side.answer(second.action(), side.dial_ended(sid, "completed", 42, caller_gone=True))
    assert done.verb.tag == "Hangup", done.text
    r = side.post(conn["status_url"], side.call_ended(sid, 50))
    assert r.status_code == 204, r.text
    return sid


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_a_busy_first_target_fails_over_and_the_call_is_recorded(api, service, dialect):
    side = dialect(service)
    targets, _ = setup_routing(api, [FIRST, SECOND])
    conn = connect(api, side)
    assert conn["credential_hint"].startswith("…") and len(conn["credential_hint"]) == 5
    secret = [v for k, v in side.credential().items() if k not in ("carrier", "carrier_account")]
    assert len(secret) == 1 and secret[0] not in json.dumps(conn), conn

    sid = failover_walk(api, side, conn)

    calls = api.calls_until("the finished call", lambda c: len(c) == 1 and c[0]["ended_at"])
    call = api.call("GET", f"/v1/calls/{calls[0]['id']}", expect=200)
    assert call["channel"] == side.name and call["external_id"] == sid
    assert call["tracking_number"] == TRACKING and call["caller"] == CALLER
    assert call["outcome"] == "answered" and call["hung_up_by"] == "caller", call
    a1, a2 = call["attempts"]
    assert (a1["target_id"], a1["outcome"], a1["destination"]) == (targets[0], "busy", FIRST)
    assert (a2["target_id"], a2["outcome"], a2["destination"]) == (targets[1], "answered", SECOND)
    # The carrier reported 42 s of talk while the attempt was up here for milliseconds: the
    # talk time is the carrier's, and the answer is never before the attempt began.
    assert a2["ring_ms"] >= 0 and a2["talk_ms"] == 42_000, a2
    assert call["talk_secs"] == 42, call
    assert ms(a2["started_at"]) >= ms(a1["ended_at"])
    # Live counts are back to zero: nothing leaks.
    assert [api.live_calls(t) for t in targets] == [0, 0]


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_refused_requests_change_nothing(api, service, dialect):
    side = dialect(service)
    setup_routing(api, [FIRST, SECOND])
    conn = connect(api, side)
    url = conn["voice_url"]
    params = side.incoming(call_id(side), CALLER, TRACKING)

    # A forged signature: the right headers, computed with another secret.
    forger = dialect(service)
    r = side.post(url, params, headers=forger.headers(url, params, _form(params)))
    assert r.status_code == 403, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "signature" in r.json()["detail"]
    # No signature at all.
    r = side.post(url, params, headers={})
    assert r.status_code == 403 and "header" in r.json()["detail"], r.text
    # A body altered after signing.
    signed = side.headers(url, params, _form(params))
    altered = dict(params, To=side.number("+14155550999"))
    r = side.post(url, altered, headers=signed)
    assert r.status_code == 403, r.text
    # A number the account does not own, properly signed.
    r = side.post(url, side.incoming(call_id(side), CALLER, "+14155550999"))
    assert r.status_code == 403 and "not a tracking number" in r.json()["detail"], r.text
    # A malformed body: not a form, and a form without the called number.
    broken = b'{"To": '
    h = dict(side.headers(url, {}, broken), **{"content-type": "application/json"})
    r = side.http.post(url, data=broken, headers=h, timeout=10)
    assert r.status_code == 400 and "JSON" in r.json()["detail"], r.text
    bare = {side.call_id: call_id(side)}
    r = side.post(url, bare)
    assert r.status_code == 400 and "To" in r.json()["detail"], r.text
    # An unknown connection.
    r = side.post(url.replace("/carriers/cc_", "/carriers/cc_x"), params)
    assert r.status_code == 404, r.text

    assert api.calls() == []


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_a_tampered_cursor_is_refused_and_routes_nothing(api, service, dialect):
    side = dialect(service)
    targets, _ = setup_routing(api, [FIRST, SECOND])
    conn = connect(api, side)
    sid = call_id(side)
    first = side.answer(conn["voice_url"], side.incoming(sid, CALLER, TRACKING))
    action = first.action()
    parts = urllib.parse.urlsplit(action)
    cursor = urllib.parse.parse_qs(parts.query)["c"][0]
    fields = cursor.split(".")
    fields[2] = str(targets[1])  # claim the second target was the one dialled
    forged = parts._replace(query="c=" + ".".join(fields)).geturl()
    r = side.post(forged, side.dial_ended(sid, "busy"))
    assert r.status_code == 403 and "cursor" in r.json()["detail"], r.text
    # Without a cursor.
    bare = parts._replace(query="").geturl()
    r = side.post(bare, side.dial_ended(sid, "busy"))
    assert r.status_code == 403, r.text
    # The genuine cursor of another call does not fit this one.
    other = side.answer(conn["voice_url"], side.incoming(call_id(side), CALLER, TRACKING))
    r = side.post(other.action(), side.dial_ended(sid, "busy"))
    assert r.status_code == 403, r.text
    # Nothing moved: the first call still rings its first target.
    assert api.live_calls(targets[0]) == 2 and api.live_calls(targets[1]) == 0
    # And the genuine action still works, once.
    if side.name == "telnyx":
        # Telnyx signs a time in whole seconds: the two requests carry one, as a replay would
        # (on a slow machine they could straddle a second and be two distinct requests).
        now = int(time.time())
        side.clock = lambda: now
    again = side.answer(action, side.dial_ended(sid, "busy"))
    assert again.dialled() == ("Number", side.number(SECOND))
    r = side.post(action, side.dial_ended(sid, "busy"))
    # Reported already; Telnyx's identical request (same signed time) is a replay.
    assert r.status_code == (403 if side.name == "telnyx" else 409), r.text


def _form(params):
    return urllib.parse.urlencode(params).encode()


@pytest.mark.parametrize("dialect", [TwilioSide, PlivoSide], ids=lambda d: d.name)
def test_a_retried_voice_request_dials_the_same_attempt_once(api, service, dialect):
    side = dialect(service)
    targets, _ = setup_routing(api, [FIRST, SECOND])
    conn = connect(api, side)
    params = side.incoming(call_id(side), CALLER, TRACKING)
    first = side.answer(conn["voice_url"], params)
    again = side.answer(conn["voice_url"], params)
    assert again.dialled() == first.dialled() == ("Number", side.number(FIRST))
    assert api.live_calls(targets[0]) == 1
    calls = api.calls_until("the call stored", lambda c: len(c) == 1 and c[0]["attempts"])
    assert len(calls[0]["attempts"]) == 1


def test_a_replayed_telnyx_request_is_refused(api, service):
    side = TelnyxSide(service)
    setup_routing(api, [FIRST, SECOND])
    conn = connect(api, side)
    url = conn["voice_url"]
    params = side.incoming(call_id(side), CALLER, TRACKING)
    body = _form(params)
    # A timestamp older than the five-minute window, validly signed: Telnyx's library refuses it
    # too.
    old = side.headers(url, params, body, timestamp=int(time.time()) - 600)
    from telnyx.lib.webhook_verification import WebhookVerificationError, verify_webhook_signature
    with pytest.raises(WebhookVerificationError):
        verify_webhook_signature(body, old, side.public)
    r = side.post(url, params, headers=old, body=body)
    assert r.status_code == 403 and "replay" in r.json()["detail"], r.text
    # A fresh request, then the very same bytes again.
    fresh = side.headers(url, params, body)
    assert side.post(url, params, headers=fresh, body=body).status_code == 200
    r = side.post(url, params, headers=fresh, body=body)
    assert r.status_code == 403 and "replay" in r.json()["detail"], r.text
    # Calls are written a moment after the answer: wait for the one, then count.
    assert len(api.calls_until("the fresh request's call", lambda c: len(c) >= 1)) == 1


# The target sipp takes one call and exits: an OPTIONS probe reaching it before the INVITE
# would be that call.
@pytest.mark.parametrize("service", [{"CALLOPT_SIP_PROBE_INTERVAL_SECS": "3600"}], indirect=True)
def test_a_target_at_its_cap_because_of_a_sip_call_is_skipped_for_webhook_calls(api, service):
    workdir = service.workdir
    target = Sipp(workdir, SIP_SCENARIOS / "uas.xml", ["-m", "1"])
    try:
        sip_uri = f"sip:agent@127.0.0.1:{target.port}"
        targets, _ = setup_routing(api, [sip_uri, SECOND], caps={0: {"concurrent": 1}})
        host, port = service.sip.rsplit(":", 1)
        caller = Sipp(workdir, HERE / "uac_hold.xml",
                      ["-s", TRACKING.lstrip("+"), "-m", "1", f"{host}:{port}"])
        try:
            wait_for("the SIP call connected", lambda: api.live_calls(targets[0]) == 1)
            side = TwilioSide(service)
            conn = connect(api, side)
            answer = side.answer(conn["voice_url"], side.incoming(call_id(side), CALLER, TRACKING))
            assert answer.dialled() == ("Number", SECOND), answer.text
            assert api.live_calls(targets[0]) == 1 and api.live_calls(targets[1]) == 1
        finally:
            caller.close()
    finally:
        target.close()


# Long enough that the call is still live when the test looks, on a loaded machine.
@pytest.mark.parametrize("service", [{"CALLOPT_MAX_CALL_SECS": "5"}], indirect=True)
def test_a_call_whose_callbacks_never_come_is_expired(api, service):
    side = TwilioSide(service)
    targets, _ = setup_routing(api, [FIRST, SECOND])
    conn = connect(api, side)
    side.answer(conn["voice_url"], side.incoming(call_id(side), CALLER, TRACKING))
    assert api.live_calls(targets[0]) == 1
    calls = api.calls_until("the call ended by the bound",
                            lambda c: len(c) == 1 and c[0]["outcome"] != "in_progress")
    assert calls[0]["outcome"] == "failed" and calls[0]["ended_at"], calls[0]
    assert api.live_calls(targets[0]) == 0


def test_a_call_survives_a_restart_of_the_service(api, service):
    side = TwilioSide(service)
    targets, _ = setup_routing(api, [FIRST, SECOND])
    conn = connect(api, side)
    sid = call_id(side)
    first = side.answer(conn["voice_url"], side.incoming(sid, CALLER, TRACKING))
    api.calls_until("the call stored", lambda c: len(c) == 1 and c[0]["attempts"])
    service.kill()
    service.start()
    # The carrier kept the call; its next request carries the cursor, signed: the call goes on.
    action = first.action().replace(urllib.parse.urlsplit(first.action()).netloc,
                                    urllib.parse.urlsplit(service.base).netloc)
    second = side.answer(action, side.dial_ended(sid, "no-answer"))
    assert second.dialled() == ("Number", SECOND), second.text
    assert api.live_calls(targets[1]) == 1
    done = side.answer(second.action(), side.dial_ended(sid, "completed", 7, caller_gone=False))
    assert done.verb.tag == "Hangup"
    calls = api.calls_until("the finished call", lambda c: c[0]["outcome"] == "answered")
    call = api.call("GET", f"/v1/calls/{calls[0]['id']}", expect=200)
    assert [a["outcome"] for a in call["attempts"]] == ["no_answer", "answered"], call
    assert call["hung_up_by"] == "target"


def test_a_webhook_call_is_attributed_to_the_visitor_session_that_held_the_number(api, service):
    import http.server
    import threading

    token = {}

    class WellKnown(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = token.get("value", "").encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), WellKnown)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        host = f"127.0.0.1:{site.server_address[1]}"
        domain = api.post("/v1/domains", {"host": host})
        token["value"] = domain["token"]
        verified = api.call("POST", f"/v1/domains/{domain['id']}/verify", expect=200)
        assert verified["verified"] is True, verified
        _, campaign = setup_routing(api, [FIRST], domains=[host])
        shown = requests.post(
            f"{service.base}/v1/dni/sessions",
            data=json.dumps({"campaign": campaign["key"], "visitor": "visitor-1",
                             "page_url": f"http://{host}/offer?utm_source=search&gclid=g1"}),
            headers={"origin": f"http://{host}", "content-type": "text/plain;charset=UTF-8",
                     "accept-language": "es-US,es;q=0.9"},
            timeout=10,
        ).json()
        assert shown.get("number") == TRACKING, shown
        side = PlivoSide(service)
        conn = connect(api, side)
        sid = call_id(side)
        first = side.answer(conn["voice_url"], side.incoming(sid, CALLER, TRACKING))
        side.answer(first.action(), side.dial_ended(sid, "completed", 3, caller_gone=True))
        calls = api.calls_until("the finished call", lambda c: len(c) == 1 and c[0]["ended_at"])
        call = api.call("GET", f"/v1/calls/{calls[0]['id']}", expect=200)
        assert call["session_id"] == shown["session"], call
        assert call["attribution"]["utm_source"] == "search"
        assert call["attribution"]["gclid"] == "g1"
        assert call["attribution"]["language"] == "es"
    finally:
        site.shutdown()


def test_connections_are_scoped_to_the_account_and_validated(api, service):
    other = Api(service, service.account("other"))
    side = TwilioSide(service)
    conn = connect(api, side)
    assert other.call("GET", f"/v1/carrier-connections/{conn['id']}")["status"] == 404
    assert other.call("GET", "/v1/carrier-connections", expect=200)["items"] == []
    assert api.call("GET", "/v1/carrier-connections", expect=200)["items"][0]["id"] == conn["id"]
    bad = api.call("POST", "/v1/carrier-connections",
                   {"name": "x", "carrier": "telnyx", "auth_token": "abcdefgh12"})
    assert bad["status"] == 400 and bad["field"] == "auth_token", bad
    bad = api.call("POST", "/v1/carrier-connections",
                   {"name": "x", "carrier": "telnyx", "public_key": "bm90IGEga2V5"})
    assert bad["status"] == 400 and bad["field"] == "public_key", bad
    bad = api.call("POST", "/v1/carrier-connections",
                   {"name": "x", "carrier": "twilio", "auth_token": "abcdefgh12",
                    "numbers": ["555"]})
    assert bad["status"] == 400 and bad["field"] == "numbers[0]", bad
    changed = api.call("PATCH", f"/v1/carrier-connections/{conn['id']}",
                       {"auth_token": "z" * 32}, expect=200)
    assert changed["credential_hint"] == "…zzzz"
    # The old token no longer verifies.
    setup_routing(api, [FIRST])
    r = side.post(conn["voice_url"], side.incoming(call_id(side), CALLER, TRACKING))
    assert r.status_code == 403
    api.call("DELETE", f"/v1/carrier-connections/{conn['id']}", expect=204)
    r = side.post(conn["voice_url"], side.incoming(call_id(side), CALLER, TRACKING))
    assert r.status_code == 404


@pytest.fixture
def redis_url(service):
    """A Redis of the test's own on a free loopback TCP port; another port when the one picked
    was taken before Redis bound it (Redis then exits), its log in the failure otherwise."""
    log_path = service.workdir / "redis.log"
    for _ in range(5):
        port = free_tcp_port()
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(service.workdir)],
                stdout=log, stderr=subprocess.STDOUT,
            )

        def up():
            if proc.poll() is not None:
                return "exited"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return "listening"
            except OSError:
                return None
        state = wait_for(f"redis-server on port {port} listening or exiting", up)
        if state == "listening":
            break
    else:
        raise AssertionError(f"redis-server did not start: {log_path.read_text()}")
    try:
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_nodes_sharing_redis_count_each_others_webhook_calls_against_caps(api, service,
                                                                          redis_url):
    # Set up through the fixture's node, which two nodes on its database and one Redis then
    # replace. Each target may hold one call at once.
    side = TwilioSide(service)
    setup_routing(api, [FIRST, SECOND], caps={0: {"concurrent": 1}, 1: {"concurrent": 1}})
    conn = connect(api, side)
    service.stop()
    nodes = []
    try:
        for name in ("node-a", "node-b"):
            d = service.workdir / name
            d.mkdir()
            node = Service(d, db=service.db, env={"CALLOPT_NODE_NAME": name,
                                                   "CALLOPT_REDIS_URL": redis_url})
            nodes.append(node.start(sip=False))
        on = [lambda url, n=n: url.replace(urllib.parse.urlsplit(url).netloc,
                                           urllib.parse.urlsplit(n.base).netloc)
              for n in nodes]
        # A call through node a rings the first target, the one it may hold at once.
        first = side.answer(on[0](conn["voice_url"]),
                            side.incoming(call_id(side), CALLER, TRACKING))
        assert first.dialled() == ("Number", FIRST), first.text
        # Node b counts it: its call skips the first target for the second.
        sid = call_id(side)
        second = side.answer(on[1](conn["voice_url"]), side.incoming(sid, CALLER, TRACKING))
        assert second.dialled() == ("Number", SECOND), second.text
        # Once node b's call is over, the second target is free again in Redis too: a third
        # call, through node a, takes it (the first still rings).
        done = side.answer(on[1](second.action()),
                           side.dial_ended(sid, "completed", 3, caller_gone=True))
        assert done.verb.tag == "Hangup", done.text
        third = side.answer(on[0](conn["voice_url"]),
                            side.incoming(call_id(side), CALLER, TRACKING))
        assert third.dialled() == ("Number", SECOND), third.text
    finally:
        for node in nodes:
            node.stop()
