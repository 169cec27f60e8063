"""SignalWire's cXML webhooks, with SignalWire's own library signing the requests. It runs in a
virtualenv of its own (the library pins an older twilio)."""

import secrets

from harness import SignalWireSide, TRACKING, connect, setup_routing

CALLER = "+12125550100"
FIRST, SECOND = "+14155550111", "+14155550122"


def test_signalwire_fails_over_and_records_the_call(api, service):
    side = SignalWireSide(service)
    targets, _ = setup_routing(api, [FIRST, SECOND])
    conn = connect(api, side)
    sid = secrets.token_hex(16)
    first = side.answer(conn["voice_url"], side.incoming(sid, CALLER, TRACKING))
    assert first.dialled() == ("Number", FIRST), first.text
    assert first.dial().attrib["answerOnBridge"] == "true"
    second = side.answer(first.action(), side.dial_ended(sid, "busy"))
    assert second.dialled() == ("Number", SECOND), second.text
    done = side.answer(second.action(), side.dial_ended(sid, "completed", 30, caller_gone=True))
    assert done.verb.tag == "Hangup"
    assert side.post(conn["status_url"], side.call_ended(sid, 35)).status_code == 204
    calls = api.calls_until("the finished call", lambda c: len(c) == 1 and c[0]["ended_at"])
    call = api.call("GET", f"/v1/calls/{calls[0]['id']}", expect=200)
    assert call["channel"] == "signalwire" and call["outcome"] == "answered"
    assert [a["outcome"] for a in call["attempts"]] == ["busy", "answered"]
    assert [a["target_id"] for a in call["attempts"]] == targets
    assert [api.live_calls(t) for t in targets] == [0, 0]


def test_signalwire_refuses_a_forged_signature(api, service):
    side = SignalWireSide(service)
    setup_routing(api, [FIRST])
    conn = connect(api, side)
    params = side.incoming(secrets.token_hex(16), CALLER, TRACKING)
    forger = SignalWireSide(service)
    import urllib.parse
    body = urllib.parse.urlencode(params).encode()
    r = side.post(conn["voice_url"], params, headers=forger.headers(conn["voice_url"], params, body))
    assert r.status_code == 403, r.text
    assert api.calls() == []
