"""Harness of the carrier webhook tests: the real `callopt` binary on a fresh SQLite file and a
loopback port, its management API, and the carrier side of each dialect played by the carrier's
own helper library (signatures computed and checked by it, answers parsed and rebuilt with it).

Nothing sleeps: the service is ready when it prints its address, and every wait polls a
condition with a deadline.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get("CALLOPT_BIN", str(REPO / "target" / "debug" / "callopt"))
HERE = Path(__file__).resolve().parent
SIP_SCENARIOS = REPO / "tests" / "sip"

#: How long any wait may take before the test fails.
WAIT_S = 15.0


def wait_for(what, probe, timeout=WAIT_S):
    """Polls `probe` until it returns a truthy value; fails naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")


def scratch_database(workdir: Path) -> str:
    """A new database: a SQLite file in `workdir`, or a new database on the PostgreSQL server
    that CALLOPT_TEST_POSTGRES names (Callopt creates it when it first opens it)."""
    server = os.environ.get("CALLOPT_TEST_POSTGRES")
    if server:
        return f"{server.rstrip('/')}/callopt_test_{secrets.token_hex(8)}"
    return str(workdir / "callopt.db")


class Service:
    """A running `callopt serve` on a database of its own."""

    def __init__(self, workdir: Path, env: dict | None = None, db: str | None = None):
        self.workdir = workdir
        self.db = db or scratch_database(workdir)
        # Tests serve their pages and verification files on loopback.
        self.env = dict(os.environ, CALLOPT_LOG="warn", CALLOPT_SIP_PROBE_INTERVAL_SECS="1",
                        CALLOPT_GUARD_ALLOW_PRIVATE="true")
        self.env.update(env or {})
        self.proc = None
        self.base = None
        self.sip = None

    def account(self, name="carriers") -> str:
        out = subprocess.run(
            [BIN, "account", "create", "--name", name, "--db", str(self.db)],
            check=True, capture_output=True, text=True, timeout=30, env=self.env,
        ).stdout
        for line in out.splitlines():
            if line.startswith("api_key:"):
                return line.split(":", 1)[1].strip()
        raise AssertionError(f"no api_key line in: {out}")

    def start(self, sip=True):
        args = [BIN, "serve", "--listen", "127.0.0.1:0", "--db", str(self.db)]
        if sip:
            args += ["--sip-listen", "127.0.0.1:0"]
        self.log = open(self.workdir / "callopt.stderr", "ab")
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL,
            env=self.env, text=True,
        )
        deadline = time.monotonic() + 30
        self.base, self.sip = None, None
        while time.monotonic() < deadline and (self.base is None or (sip and self.sip is None)):
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"callopt exited: {self.stderr()}")
            if line.startswith("listening on "):
                self.base = line.split(" ", 2)[2].strip()
            if line.startswith("sip on udp:"):
                self.sip = line.split("udp:", 1)[1].split()[0]
        if self.base is None:
            raise AssertionError(f"callopt printed no address: {self.stderr()}")
        if not self.base.startswith("http"):
            self.base = "http://" + self.base
        return self

    def stderr(self) -> str:
        try:
            return (self.workdir / "callopt.stderr").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def kill(self):
        """`kill -9`: no shutdown, no flush beyond what is committed."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


class Api:
    """The management API with one account's key."""

    def __init__(self, service: Service, key: str):
        self.service = service
        self.key = key
        self.http = requests.Session()

    @property
    def base(self):
        return self.service.base

    def call(self, method, path, body=None, expect=None):
        r = self.http.request(
            method, self.base + path, json=body, timeout=10,
            headers={"authorization": f"Bearer {self.key}"},
        )
        if expect is not None:
            assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    def post(self, path, body):
        return self.call("POST", path, body, expect=201)

    def calls(self):
        return self.call("GET", "/v1/calls", expect=200)["items"]

    def calls_until(self, what, predicate):
        return wait_for(what, lambda: (lambda c: c if predicate(c) else None)(self.calls()))

    def live_calls(self, target):
        return self.call("GET", f"/v1/targets/{target}", expect=200)["live_calls"]


TRACKING = "+14155550123"


def setup_routing(api: Api, destinations, *, tracking=TRACKING, caps=None, domains=()):
    """Targets (in priority order), a failover plan over them, a pool with the tracking number
    and a campaign on it. Returns the target ids."""
    ids = []
    for i, dest in enumerate(destinations):
        body = {"name": f"t{i}", "destination": dest, "priority": i + 1}
        if caps and caps.get(i):
            body["caps"] = caps[i]
        ids.append(api.post("/v1/targets", body)["id"])
    plan = api.post("/v1/routing-plans", {
        "name": "failover", "targets": ids, "ring_timeout_secs": 20,
        "filters": {"open_now": True, "geography": False, "language": False},
    })["id"]
    pool = api.post("/v1/pools", {"name": "p"})["id"]
    api.post("/v1/numbers", {"e164": tracking, "pool_id": pool})
    campaign = api.post("/v1/campaigns", {
        "name": "c", "default_number": "+12015550199", "pool_id": pool,
        "routing_plan_id": plan, "domains": list(domains),
    })
    return ids, campaign


def form(params: dict) -> bytes:
    return urllib.parse.urlencode(params).encode()


class Answer:
    """A parsed XML answer."""

    def __init__(self, status: int, text: str):
        self.status = status
        self.text = text
        self.root = ET.fromstring(text)
        assert self.root.tag == "Response", text
        self.verbs = list(self.root)

    @property
    def verb(self):
        return self.verbs[0] if self.verbs else None

    def dial(self):
        v = self.verb
        assert v is not None and v.tag == "Dial", self.text
        return v

    def dialled(self):
        """(noun, value) of the Dial."""
        noun = list(self.dial())[0]
        return noun.tag, noun.text

    def action(self):
        return self.dial().attrib["action"]


def canonical(element: ET.Element):
    """A comparable form of an XML tree: tag, attributes, text, children."""
    return (
        element.tag,
        dict(sorted(element.attrib.items())),
        (element.text or "").strip(),
        [canonical(c) for c in element],
    )


class CarrierSide:
    """The carrier: sends signed webhooks the way the carrier does and reads the answers.
    Subclasses sign and check with the carrier's library."""

    name = ""
    call_id = "CallSid"
    dial_status = "DialCallStatus"
    dial_duration = "DialCallDuration"
    plus = True

    def __init__(self, service: Service):
        self.service = service
        self.http = requests.Session()

    def number(self, e164: str) -> str:
        return e164 if self.plus else e164.lstrip("+")

    def credential(self) -> dict:
        raise NotImplementedError

    def headers(self, url: str, params: dict, body: bytes) -> dict:
        raise NotImplementedError

    def check_answer(self, answer: Answer):
        """Rebuilds the answer with the carrier's library where it has an XML builder."""

    def post(self, url: str, params: dict, headers: dict | None = None, body: bytes | None = None):
        body = form(params) if body is None else body
        h = {"content-type": "application/x-www-form-urlencoded"}
        h.update(self.headers(url, params, body) if headers is None else headers)
        return self.http.post(url, data=body, headers=h, timeout=10)

    def answer(self, url, params) -> Answer:
        r = self.post(url, params)
        assert r.status_code == 200, f"{url}: {r.status_code} {r.text}"
        answer = Answer(r.status_code, r.text)
        self.check_answer(answer)
        return answer

    # The parameters each request carries, in the dialect's names.
    def incoming(self, call_id, caller, called):
        return {
            self.call_id: call_id, "AccountSid": getattr(self, "account_sid", ""),
            "From": self.number(caller), "To": self.number(called),
            "CallStatus": "ringing", "Direction": "inbound",
        }

    def dial_ended(self, call_id, status, duration=None, caller_gone=False):
        p = {
            self.call_id: call_id, "AccountSid": getattr(self, "account_sid", ""),
            self.dial_status: status,
            "CallStatus": "completed" if caller_gone else "in-progress",
        }
        if duration is not None:
            p[self.dial_duration] = str(duration)
        return p

    def call_ended(self, call_id, duration):
        return {
            self.call_id: call_id, "AccountSid": getattr(self, "account_sid", ""),
            "CallStatus": "completed", "CallDuration": str(duration),
        }


class TwilioSide(CarrierSide):
    name = "twilio"

    def __init__(self, service):
        super().__init__(service)
        from twilio.request_validator import RequestValidator

        self.token = secrets.token_hex(16)
        self.account_sid = "AC" + secrets.token_hex(16)
        self.validator = RequestValidator(self.token)

    def credential(self):
        return {"carrier": "twilio", "auth_token": self.token, "carrier_account": self.account_sid}

    def headers(self, url, params, body):
        sig = self.validator.compute_signature(url, params)
        # The library accepts what it signed: the request is the one Twilio would send.
        assert self.validator.validate(url, params, sig)
        return {"X-Twilio-Signature": sig}

    def check_answer(self, answer):
        from twilio.twiml.voice_response import VoiceResponse

        rebuilt = VoiceResponse()
        verb = answer.verb
        if verb.tag == "Dial":
            a = verb.attrib
            dial = rebuilt.dial(
                action=a["action"], method=a["method"], timeout=int(a["timeout"]),
                caller_id=a.get("callerId"), answer_on_bridge=True,
            )
            noun, value = answer.dialled()
            dial.number(value) if noun == "Number" else dial.sip(value)
        elif verb.tag == "Reject":
            rebuilt.reject(reason=verb.attrib["reason"])
        else:
            rebuilt.hangup()
        assert canonical(ET.fromstring(str(rebuilt))) == canonical(answer.root), (
            f"TwiML differs from what the twilio library builds:\n{answer.text}\n{rebuilt}"
        )


class TelnyxSide(CarrierSide):
    name = "telnyx"

    def __init__(self, service):
        super().__init__(service)
        from nacl.signing import SigningKey

        self.key = SigningKey.generate()
        self.public = base64.b64encode(bytes(self.key.verify_key)).decode()
        self.account_sid = secrets.token_hex(8)
        self.clock = lambda: int(time.time())

    def credential(self):
        return {"carrier": "telnyx", "public_key": self.public, "carrier_account": self.account_sid}

    def headers(self, url, params, body, timestamp=None):
        from telnyx.lib.webhook_verification import verify_webhook_signature

        ts = str(self.clock() if timestamp is None else timestamp)
        sig = base64.b64encode(self.key.sign(ts.encode() + b"|" + body).signature).decode()
        h = {"telnyx-signature-ed25519": sig, "telnyx-timestamp": ts}
        if timestamp is None:
            # Telnyx's library accepts it: this is how Telnyx signs.
            verify_webhook_signature(body, h, self.public)
        return h


class PlivoSide(CarrierSide):
    name = "plivo"
    call_id = "CallUUID"
    dial_status = "DialStatus"
    dial_duration = "DialBLegDuration"
    plus = False

    def __init__(self, service):
        super().__init__(service)
        self.token = secrets.token_hex(20)

    def credential(self):
        return {"carrier": "plivo", "auth_token": self.token}

    def headers(self, url, params, body):
        from plivo.utils.signature_v3 import (
            construct_post_url, get_signature_v3, validate_v3_signature)

        nonce = str(secrets.randbelow(10**12))
        sig = get_signature_v3(self.token, construct_post_url(url, dict(params)), nonce).decode()
        assert validate_v3_signature("POST", url, nonce, self.token, sig, dict(params))
        return {"X-Plivo-Signature-V3": sig, "X-Plivo-Signature-V3-Nonce": nonce}

    def call_ended(self, call_id, duration):
        return {"CallUUID": call_id, "CallStatus": "completed", "Duration": str(duration),
                "HangupCause": "NORMAL_CLEARING"}

    def check_answer(self, answer):
        from plivo import plivoxml

        rebuilt = plivoxml.ResponseElement()
        verb = answer.verb
        if verb.tag == "Dial":
            a = verb.attrib
            dial = plivoxml.DialElement(
                action=a["action"], method=a["method"], timeout=int(a["timeout"]),
                caller_id=a.get("callerId"), redirect=True,
            )
            noun, value = answer.dialled()
            dial.add(plivoxml.NumberElement(value) if noun == "Number" else plivoxml.UserElement(value))
            rebuilt.add(dial)
        else:
            reason = verb.attrib.get("reason")
            rebuilt.add(plivoxml.HangupElement(reason=reason) if reason else plivoxml.HangupElement())
        ours = canonical(answer.root)
        theirs = canonical(ET.fromstring(rebuilt.to_string(False)))
        # Plivo's builder writes booleans as "true" like we do; compare the trees.
        assert theirs == ours, f"Plivo XML differs:\n{answer.text}\n{rebuilt.to_string(False)}"


class SignalWireSide(CarrierSide):
    name = "signalwire"

    def __init__(self, service):
        super().__init__(service)
        from signalwire.request_validator import RequestValidator

        self.key = "PSK_" + secrets.token_hex(12)
        self.account_sid = secrets.token_hex(8)
        self.validator = RequestValidator(self.key)

    def credential(self):
        return {"carrier": "signalwire", "signing_key": self.key, "carrier_account": self.account_sid}

    def headers(self, url, params, body):
        sig = self.validator.build_signature_with_compatibility(url, params)
        assert self.validator.validate(url, params, sig)
        return {"X-SignalWire-Signature": sig}


SIDES = {c.name: c for c in (TwilioSide, TelnyxSide, PlivoSide, SignalWireSide)}


def connect(api: Api, side: CarrierSide, numbers=(TRACKING,)):
    """A carrier connection for `side` serving `numbers`; returns its API view."""
    body = {"name": side.name, "numbers": list(numbers)}
    body.update(side.credential())
    return api.post("/v1/carrier-connections", body)


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_tcp_port():
    """A loopback TCP port free a moment ago (a free UDP port of that number may be taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sipp:
    """A sipp process on a scenario file, killed on close."""

    def __init__(self, workdir: Path, scenario: Path, args=()):
        if shutil.which("sipp") is None:
            raise AssertionError("sipp (Debian package sip-tester) is not installed")
        for _ in range(5):
            self.port = free_udp_port()
            self.proc = subprocess.Popen(
                ["sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(self.port),
                 "-nostdin", "-timeout", "90s", "-timeout_error", *args],
                cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if self._bound():
                return
            self.close()
        raise AssertionError("sipp could not bind a port")

    def _bound(self):
        def taken():
            if self.proc.poll() is not None:
                return "exited"
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    s.bind(("127.0.0.1", self.port))
                    return None
                except OSError:
                    return "bound"
        return wait_for("sipp bound its port", taken) == "bound"

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def workdir():
    d = Path(tempfile.mkdtemp(prefix="callopt-carriers-"))
    return d
