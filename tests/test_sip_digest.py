"""SIP digest authentication: RFC vectors, header parsing, client/server round trips."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.sip.digest import (
    MAX_HEADER_VALUE_LENGTH,
    NONCE_LIFETIME,
    Challenge,
    Credentials,
    DigestServer,
    DigestUnsupported,
    Verdict,
    answer,
    first_supported,
    ha1,
)
from appliance.sip.errors import SipParseError

# --- published vectors -------------------------------------------------------------------------------------------

# RFC 2617 section 3.5, folded over lines as printed there.
RFC2617_CHALLENGE = (
    "Digest\r\n"
    '                 realm="testrealm@host.com",\r\n'
    '                 qop="auth,auth-int",\r\n'
    '                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",\r\n'
    '                 opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)
RFC2617_AUTHORIZATION = (
    'Digest username="Mufasa",\r\n'
    '                 realm="testrealm@host.com",\r\n'
    '                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",\r\n'
    '                 uri="/dir/index.html",\r\n'
    "                 qop=auth,\r\n"
    "                 nc=00000001,\r\n"
    '                 cnonce="0a4f113b",\r\n'
    '                 response="6629fae49393a05397450978507c4ef1",\r\n'
    '                 opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)

# RFC 7616 section 3.9.1.
RFC7616_REALM = "http-auth@example.org"
RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"


def test_rfc2617_example() -> None:
    challenge = Challenge.parse(RFC2617_CHALLENGE)
    assert challenge == Challenge(
        realm="testrealm@host.com",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        opaque="5ccc069c403ebaf9f0171e9517f40e41",
        qop=("auth", "auth-int"),
    )
    creds = answer(challenge, "GET", "/dir/index.html", "Mufasa", "Circle Of Life", cnonce="0a4f113b")
    assert creds.response == "6629fae49393a05397450978507c4ef1"
    assert creds == Credentials.parse(RFC2617_AUTHORIZATION)


@pytest.mark.parametrize(
    ("algorithm", "response"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_examples(algorithm: str, response: str) -> None:
    challenge = Challenge.parse(
        f'Digest realm="{RFC7616_REALM}", qop="auth, auth-int", algorithm={algorithm}, '
        f'nonce="{RFC7616_NONCE}", opaque="{RFC7616_OPAQUE}"'
    )
    creds = answer(challenge, "GET", "/dir/index.html", "Mufasa", "Circle of Life", cnonce=RFC7616_CNONCE)
    assert creds.response == response
    assert (creds.algorithm, creds.qop, creds.nc, creds.opaque) == (algorithm, "auth", "00000001", RFC7616_OPAQUE)


def test_ha1_is_the_hash_of_user_realm_password() -> None:
    expected = hashlib.md5(b"Mufasa:testrealm@host.com:Circle Of Life").hexdigest()
    assert ha1("Mufasa", "testrealm@host.com", "Circle Of Life") == expected
    assert ha1("Mufasa", "testrealm@host.com", "Circle Of Life", "md5-SESS") == expected
    assert ha1("Mufasa", "r", "p", None) == ha1("Mufasa", "r", "p", "MD5")
    assert ha1("Mufasa", "r", "p", "SHA-256") == hashlib.sha256(b"Mufasa:r:p").hexdigest()
    with pytest.raises(DigestUnsupported, match="SHA-512-256"):
        ha1("Mufasa", "r", "p", "SHA-512-256")


# --- parsing what real servers and phones send -------------------------------------------------------------------

REAL_CHALLENGES = {
    "asterisk chan_sip": (
        'Digest algorithm=MD5, realm="asterisk", nonce="3a7f2b1c"',
        Challenge("asterisk", "3a7f2b1c", algorithm="MD5"),
    ),
    "asterisk pjsip": (
        'Digest realm="asterisk",nonce="1700000000/9c2b0f5d6f7e3c8a",opaque="5f2a0e1c",algorithm=md5,qop="auth"',
        Challenge("asterisk", "1700000000/9c2b0f5d6f7e3c8a", opaque="5f2a0e1c", algorithm="md5", qop=("auth",)),
    ),
    "kamailio": (
        'Digest realm="sip.example.com", nonce="ZXhhbXBsZQ==", qop="auth, auth-int", algorithm=SHA-256, stale=TRUE',
        Challenge("sip.example.com", "ZXhhbXBsZQ==", stale=True, algorithm="SHA-256", qop=("auth", "auth-int")),
    ),
    "freeswitch": (
        'Digest realm="10.0.0.1", nonce="b8a6e3a2-6f3c-4d2a-9f1e-0c1d2e3f4a5b", algorithm=MD5, qop="auth"',
        Challenge("10.0.0.1", "b8a6e3a2-6f3c-4d2a-9f1e-0c1d2e3f4a5b", algorithm="MD5", qop=("auth",)),
    ),
    "with domain, stale=false and an unknown parameter": (
        'DIGEST Realm="voxgate", NONCE="n", domain="sip:a.example sip:b.example", stale=false, charset=UTF-8',
        Challenge("voxgate", "n", domain=("sip:a.example", "sip:b.example"), extra=(("charset", "UTF-8"),)),
    ),
}


@pytest.mark.parametrize("name", REAL_CHALLENGES)
def test_parse_real_challenges(name: str) -> None:
    value, expected = REAL_CHALLENGES[name]
    parsed = Challenge.parse(value)
    assert parsed == expected
    assert Challenge.parse(parsed.serialize()) == parsed
    answer(parsed, "REGISTER", "sip:example.com", "alice", "secret")  # every one of them is answerable


def test_parse_credentials_with_odd_spacing_and_escapes() -> None:
    value = (
        '  digest   USERNAME = "al\\"ice" ,realm="voxgate"\t,nonce =  "abc" ,uri="sip:bob@example.com;transport=tcp",'
        'response="0123abcd",QOP=auth , NC=0000000A ,cnonce="a, b=c",  foo=bar, x-note="say \\"hi\\" \\\\o/"'
    )
    assert Credentials.parse(value) == Credentials(
        username='al"ice',
        realm="voxgate",
        nonce="abc",
        uri="sip:bob@example.com;transport=tcp",
        response="0123abcd",
        cnonce="a, b=c",
        qop="auth",
        nc="0000000A",
        extra=(("foo", "bar"), ("x-note", 'say "hi" \\o/')),
    )


def test_serialize_quotes_what_the_rfc_quotes() -> None:
    challenge = Challenge(
        'a "realm"', "n1", opaque="o", stale=True, algorithm="SHA-256", qop=("auth", "auth-int"), domain=("sip:x",)
    )
    assert challenge.serialize() == (
        'Digest realm="a \\"realm\\"", nonce="n1", opaque="o", stale=true, algorithm=SHA-256, qop="auth,auth-int", '
        'domain="sip:x"'
    )
    creds = Credentials(
        "bob\\", "r", "n", "sip:r", "ff", algorithm="MD5", cnonce="c", opaque="o", qop="auth", nc="00000002",
        extra=(("x", "token"), ("y", "two words"), ("z", "")),
    )  # fmt: skip
    assert creds.serialize() == (
        'Digest username="bob\\\\", realm="r", nonce="n", uri="sip:r", response="ff", algorithm=MD5, cnonce="c", '
        'opaque="o", qop=auth, nc=00000002, x=token, y="two words", z=""'
    )
    assert Credentials.parse(creds.serialize()) == creds


BAD_CHALLENGES = [
    ("", "empty header value"),
    ("   ", "empty header value"),
    ("Digest " + "x" * MAX_HEADER_VALUE_LENGTH, f"over the limit of {MAX_HEADER_VALUE_LENGTH}"),
    ('Digest nonce="n", realm="abc, opaque=o', "unterminated quoted string at offset 24"),
    ('Digest realm="abc\\', "unterminated quoted string"),
    ('Digest realm "abc", nonce="n"', "missing '=' after 'realm' at offset 13"),
    ('Digest realm=, nonce="n"', "missing value for 'realm', found ','"),
    ("Digest realm=", "missing value for 'realm'"),
    ('Basic dXNlcjpwYXNz"', "scheme 'Basic' is not Digest"),
    ('=realm="a"', "expected the auth scheme, found '='"),
    ('Digest, realm="a"', "expected whitespace after 'Digest', found ','"),
    ('Digest realm="a", Realm="b", nonce="n"', "duplicate parameter 'Realm'"),
    ('Digest realm="a" nonce="n"', "expected ',' after the value of 'realm', found 'n'"),
    ('Digest realm=sip:x, nonce="n"', "expected ',' after the value of 'realm', found ':'"),
    ('Digest realm="a", nonce="n",', "trailing ','"),
    ('Digest realm="a", , nonce="n"', "expected a parameter name, found ','"),
    ('Digest realm="a",\r\nnonce="n"', "expected a parameter name, found '\\r'"),  # a line break without a fold
    ('Digest realm="a\x01", nonce="n"', "control character '\\x01' in a quoted string"),
    ('Digest nonce="n"', "missing 'realm'"),
    ('Digest realm="a"', "missing 'nonce'"),
    ("Digest", "missing 'realm'"),
    ('Digest realm="a", nonce="n", qop="auth,,auth-int"', "qop option '' is not a token"),
    ('Digest realm="a", nonce="n", algorithm="MD 5"', "algorithm 'MD 5' is not a token"),
]


@pytest.mark.parametrize(("value", "message"), BAD_CHALLENGES)
def test_challenge_parse_errors(value: str, message: str) -> None:
    with pytest.raises(SipParseError, match="^digest challenge: .*" + re.escape(message)):
        Challenge.parse(value)


GOOD_CREDENTIALS = 'Digest username="u", realm="r", nonce="n", uri="sip:r", response="ff"'


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('Digest username="u", realm="r", nonce="n", response="ff"', "missing 'uri'"),
        (GOOD_CREDENTIALS + ', qop=auth, cnonce="c", nc=1', "nc '1' is not 8 hex digits"),
        (GOOD_CREDENTIALS + ', qop=auth, cnonce="c", nc=0000000g', "nc '0000000g' is not 8 hex digits"),
        (GOOD_CREDENTIALS + ", qop=auth, nc=00000001", "qop=auth needs both cnonce and nc"),
        (GOOD_CREDENTIALS + ', qop="auth int", cnonce="c", nc=00000001', "qop 'auth int' is not a token"),
        (GOOD_CREDENTIALS + ', username="v"', "duplicate parameter 'username'"),
        ('Digest username="\x7f", realm="r"', "control character"),
    ],
)
def test_credentials_parse_errors(value: str, message: str) -> None:
    with pytest.raises(SipParseError, match="^digest credentials: .*" + re.escape(message)):
        Credentials.parse(value)


def test_hand_built_values_that_cannot_be_sent_are_refused() -> None:
    with pytest.raises(SipParseError, match="control character in a value"):
        Challenge("a\r\nVia: evil", "n")
    with pytest.raises(SipParseError, match="not distinct tokens"):
        Challenge("r", "n", extra=(("REALM", "x"),))
    with pytest.raises(SipParseError, match="not distinct tokens"):
        Credentials("u", "r", "n", "sip:r", "ff", extra=(("a b", "x"),))
    with pytest.raises(SipParseError, match="domain URIs"):
        Challenge("r", "n", domain=("sip:a sip:b",))


# --- server and client together ----------------------------------------------------------------------------------

REALM = "voxgate.example"
SECRET = b"0123456789abcdef-server-secret"
PASSWORDS = {"alice": "wonderland", "bob": "builder"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def lookup(username: str, family: str) -> str | None:
    password = PASSWORDS.get(username)
    return None if password is None else ha1(username, REALM, password, family)


def over_the_wire(challenge: Challenge, username: str, password: str, *, nc: int = 1, body: bytes = b"") -> Credentials:
    """The challenge and the answer as a UA and a server would see them, through their text."""
    creds = answer(Challenge.parse(challenge.serialize()), "INVITE", "sip:100@voxgate.example", username, password,
                   nc=nc, body=body)  # fmt: skip
    return Credentials.parse(creds.serialize())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server(clock: FakeClock) -> DigestServer:
    return DigestServer(REALM, SECRET, clock)


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256", "MD5-sess", "SHA-256-sess"])
def test_right_password_is_ok_and_wrong_one_is_wrong(server: DigestServer, algorithm: str) -> None:
    challenge = server.challenge(algorithm)
    assert (challenge.algorithm, challenge.qop, challenge.stale) == (algorithm, ("auth",), False)
    assert server.check(over_the_wire(challenge, "alice", "wonderland"), "INVITE", lookup) is Verdict.OK
    assert server.check(over_the_wire(challenge, "bob", "wonderland"), "INVITE", lookup) is Verdict.WRONG


def test_server_offers_sha256_before_md5_and_both_work(server: DigestServer) -> None:
    challenges = server.challenges()
    assert [c.algorithm for c in challenges] == ["SHA-256", "MD5"]
    assert challenges[0].nonce != challenges[1].nonce
    assert first_supported(challenges) == challenges[0]
    for challenge in challenges:
        assert server.check(over_the_wire(challenge, "bob", "builder"), "INVITE", lookup) is Verdict.OK


def test_unknown_user_takes_the_wrong_password_path(server: DigestServer) -> None:
    calls: list[tuple[str, str]] = []

    def recording_lookup(username: str, family: str) -> str | None:
        calls.append((username, family))
        return lookup(username, family)

    challenge = server.challenge("SHA-256")
    unknown = server.check(over_the_wire(challenge, "mallory", "x"), "INVITE", recording_lookup)
    wrong = server.check(over_the_wire(challenge, "alice", "x"), "INVITE", recording_lookup)
    assert unknown is wrong is Verdict.WRONG
    assert calls == [("mallory", "SHA-256"), ("alice", "SHA-256")]


def test_response_for_another_method_or_body_is_wrong(server: DigestServer) -> None:
    creds = over_the_wire(server.challenge(), "alice", "wonderland")
    assert server.check(creds, "BYE", lookup) is Verdict.WRONG
    auth_int = dataclasses.replace(server.challenge(), qop=("auth-int",))
    creds = over_the_wire(auth_int, "alice", "wonderland", body=b"v=0\r\n")
    assert creds.qop == "auth-int"
    assert server.check(creds, "INVITE", lookup, body=b"v=1\r\n") is Verdict.WRONG
    assert server.check(creds, "INVITE", lookup, body=b"v=0\r\n") is Verdict.OK


def test_expired_nonce_is_stale_only_with_the_right_password(server: DigestServer, clock: FakeClock) -> None:
    challenge = server.challenge()
    clock.now += NONCE_LIFETIME + 1
    assert server.check(over_the_wire(challenge, "alice", "wonderland"), "INVITE", lookup) is Verdict.STALE
    assert server.check(over_the_wire(challenge, "alice", "guess"), "INVITE", lookup) is Verdict.WRONG
    assert server.challenge(stale=True).serialize().count("stale=true") == 1


def test_clock_going_back_makes_nonces_stale(server: DigestServer, clock: FakeClock) -> None:
    challenge = server.challenge()
    clock.now -= 10
    assert server.check(over_the_wire(challenge, "alice", "wonderland"), "INVITE", lookup) is Verdict.STALE


def test_nonce_not_ours_is_malformed(server: DigestServer, clock: FakeClock) -> None:
    challenge = server.challenge()
    nonce = challenge.nonce
    flipped = nonce[:5] + ("A" if nonce[5] != "A" else "B") + nonce[6:]
    other_secret = DigestServer(REALM, b"another secret, 16+ bytes", clock).challenge().nonce
    other_realm = DigestServer("other.example", SECRET, clock).challenge().nonce
    for bad in [flipped, nonce + "!", nonce[:-1], "", "nonce-from-elsewhere", "é" * 43, other_secret, other_realm]:
        creds = over_the_wire(dataclasses.replace(challenge, nonce=bad), "alice", "wonderland")
        assert server.check(creds, "INVITE", lookup) is Verdict.MALFORMED, bad


def test_credentials_not_for_this_server_are_malformed(clock: FakeClock) -> None:
    server = DigestServer(REALM, SECRET, clock, opaque="opaque-1")
    challenge = server.challenge()
    assert challenge.opaque == "opaque-1"
    good = over_the_wire(challenge, "alice", "wonderland")
    for bad in [
        dataclasses.replace(good, realm="elsewhere"),
        dataclasses.replace(good, opaque=None),
        dataclasses.replace(good, algorithm="SHA-512-256"),
        dataclasses.replace(good, qop="auth-conf"),
        dataclasses.replace(good, algorithm="MD5-sess", qop=None, cnonce=None, nc=None),
    ]:
        assert server.check(bad, "INVITE", lookup) is Verdict.MALFORMED, bad
    assert server.check(good, "INVITE", lookup) is Verdict.OK


def test_nonce_count_replays_are_refused(server: DigestServer) -> None:
    challenge = server.challenge("SHA-256")
    first = over_the_wire(challenge, "alice", "wonderland", nc=1)
    assert server.check(first, "INVITE", lookup) is Verdict.OK
    assert server.check(first, "INVITE", lookup) is Verdict.REPLAY
    assert server.check(over_the_wire(challenge, "alice", "wonderland", nc=3), "INVITE", lookup) is Verdict.OK
    assert server.check(over_the_wire(challenge, "alice", "wonderland", nc=2), "INVITE", lookup) is Verdict.REPLAY
    assert server.check(over_the_wire(challenge, "alice", "wonderland", nc=4), "INVITE", lookup) is Verdict.OK


def test_failed_attempts_do_not_use_up_nonce_counts(server: DigestServer) -> None:
    challenge = server.challenge()
    assert server.check(over_the_wire(challenge, "alice", "x", nc=9), "INVITE", lookup) is Verdict.WRONG
    assert server.check(over_the_wire(challenge, "alice", "wonderland", nc=1), "INVITE", lookup) is Verdict.OK


def test_rfc2069_answer_is_good_for_one_request(server: DigestServer) -> None:
    challenge = dataclasses.replace(server.challenge(), qop=())
    creds = over_the_wire(challenge, "alice", "wonderland")
    assert (creds.qop, creds.nc, creds.cnonce) == (None, None, None)
    assert server.check(creds, "INVITE", lookup) is Verdict.OK
    assert server.check(creds, "INVITE", lookup) is Verdict.REPLAY


def test_nonces_with_unknown_history_are_refused(clock: FakeClock) -> None:
    server = DigestServer(REALM, SECRET, clock, max_tracked=2)
    a, b, c = (server.challenge() for _ in range(3))
    for challenge in (a, b, c):
        assert server.check(over_the_wire(challenge, "alice", "wonderland"), "INVITE", lookup) is Verdict.OK
    # `a` was forgotten to make room for `c`: its nc=1 could be used again, so nc=2 is not trusted either.
    assert server.check(over_the_wire(a, "alice", "wonderland", nc=2), "INVITE", lookup) is Verdict.REPLAY
    assert server.check(over_the_wire(c, "alice", "wonderland", nc=2), "INVITE", lookup) is Verdict.OK
    # After a restart the nonces still verify, but whether they were used is unknown.
    clock.now += 1
    restarted = DigestServer(REALM, SECRET, clock)
    assert restarted.check(over_the_wire(b, "alice", "wonderland", nc=5), "INVITE", lookup) is Verdict.REPLAY
    assert restarted.check(over_the_wire(restarted.challenge(), "alice", "wonderland"), "INVITE", lookup) is Verdict.OK


def test_server_refuses_what_it_cannot_do(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        DigestServer(REALM, b"short", clock)
    with pytest.raises(DigestUnsupported, match="'SHA-512-256' is not supported"):
        DigestServer(REALM, SECRET, clock).challenge("SHA-512-256")


@pytest.mark.parametrize(
    ("challenge", "message"),
    [
        (Challenge("r", "n", algorithm="SHA-512-256", qop=("auth",)), "'SHA-512-256' is not supported"),
        (Challenge("r", "n", qop=("auth-conf",)), "none of the offered qop values"),
        (Challenge("r", "n", algorithm="MD5-sess"), "MD5-sess without qop"),
    ],
)
def test_answer_refuses_what_it_cannot_compute(challenge: Challenge, message: str) -> None:
    with pytest.raises(DigestUnsupported, match=message):
        answer(challenge, "REGISTER", "sip:r", "u", "p")
    assert first_supported([challenge]) is None


def test_answer_checks_nc_range() -> None:
    challenge = Challenge("r", "n", qop=("auth",))
    assert answer(challenge, "REGISTER", "sip:r", "u", "p", nc=0xFFFFFFFF).nc == "ffffffff"
    for nc in (0, 0x1_0000_0000):
        with pytest.raises(ValueError, match="outside"):
            answer(challenge, "REGISTER", "sip:r", "u", "p", nc=nc)


# --- properties --------------------------------------------------------------------------------------------------

TOKENS = st.text(string.ascii_letters + string.digits + "-.!%*_+`'~", min_size=1, max_size=10)
TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=20)
URIS = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp")), min_size=1, max_size=15)
KNOWN = {
    *("realm", "nonce", "opaque", "stale", "algorithm", "qop", "domain"),
    *("username", "uri", "response", "cnonce", "nc"),
}
EXTRA = st.lists(
    st.tuples(TOKENS.filter(lambda name: name.lower() not in KNOWN), TEXT), max_size=3, unique_by=lambda p: p[0].lower()
).map(tuple)


@given(
    st.builds(
        Challenge,
        realm=TEXT,
        nonce=TEXT,
        opaque=st.none() | TEXT,
        stale=st.booleans(),
        algorithm=st.none() | TOKENS,
        qop=st.lists(TOKENS, max_size=3).map(tuple),
        domain=st.lists(URIS, max_size=3).map(tuple),
        extra=EXTRA,
    )
)
def test_challenge_round_trip(challenge: Challenge) -> None:
    assert Challenge.parse(challenge.serialize()) == challenge


@st.composite
def credentials(draw: st.DrawFn) -> Credentials:
    qop = draw(st.none() | TOKENS)
    nc = st.integers(0, 0xFFFFFFFF).map(lambda n: f"{n:08x}") | st.just("0000ABCD")
    username, realm, nonce, uri, response = (draw(TEXT) for _ in range(5))
    return Credentials(
        username,
        realm,
        nonce,
        uri,
        response,
        algorithm=draw(st.none() | TOKENS),
        cnonce=draw(TEXT if qop else st.none() | TEXT),
        opaque=draw(st.none() | TEXT),
        qop=qop,
        nc=draw(nc if qop else st.none() | nc),
        extra=draw(EXTRA),
    )


@given(credentials())
def test_credentials_round_trip(creds: Credentials) -> None:
    assert Credentials.parse(creds.serialize()) == creds


@given(username=TEXT, password=st.text(), algorithm=st.sampled_from(["MD5", "SHA-256", "MD5-sess", "SHA-256-sess"]))
def test_any_user_and_password_authenticate(username: str, password: str, algorithm: str) -> None:
    server = DigestServer(REALM, SECRET, FakeClock())
    creds = over_the_wire(server.challenge(algorithm), username, password)
    assert server.check(creds, "INVITE", lambda user, family: ha1(user, REALM, password, family)) is Verdict.OK


def test_the_offered_algorithms_are_configurable() -> None:
    server = DigestServer("voxgate", b"s" * 32, lambda: 1000.0, algorithms=["MD5"])
    assert [c.algorithm for c in server.challenges()] == ["MD5"]
    default = DigestServer("voxgate", b"s" * 32, lambda: 1000.0)
    assert [c.algorithm for c in default.challenges()] == ["SHA-256", "MD5"]
    for wrong in ([], ["SHA-1"], ["MD5-sess"]):
        with pytest.raises(DigestUnsupported, match="offered digest algorithms must be some of"):
            DigestServer("voxgate", b"s" * 32, lambda: 1000.0, algorithms=wrong)
