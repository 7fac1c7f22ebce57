"""The codec endpoint over real HTTP: nothing without the token, the UI's origin only, and the
decrypted payloads for whoever holds the token (header or signed-in cookie)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from google.protobuf import json_format
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.contrib.pydantic import pydantic_data_converter

from proctor import payload_keys
from proctor.codec import EncryptionCodec
from proctor.payload_keys import KeyRing
from proctor.settings import NotConfigured, ProctorSettings
from proctor_server.worker.codec_server import CodecEndpoint, codec_served, endpoint_for

TOKEN = "codec-test-token-0123456789abcdef"
UI = "http://127.0.0.1:8233"
SECRET = "customer.secret@example.com"


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, EncryptionCodec]]:
    codec = EncryptionCodec(KeyRing.in_memory())
    endpoint = CodecEndpoint(codec, token=TOKEN, namespace="default", origins=[UI])
    async with codec_served(endpoint, "127.0.0.1", 0) as url:
        yield url, codec


async def encrypted_body(codec: EncryptionCodec) -> str:
    clear = pydantic_data_converter.payload_converter.to_payloads([{"email": SECRET}])
    return json_format.MessageToJson(Payloads(payloads=await codec.encode(clear)))


def payloads_of(text: str) -> list[Payload]:
    return list(json_format.Parse(text, Payloads()).payloads)


async def test_decode_refused_without_or_with_a_wrong_token(
    served: tuple[str, EncryptionCodec],
) -> None:
    url, codec = served
    body = await encrypted_body(codec)
    async with aiohttp.ClientSession() as http:
        for headers in (
            {},
            {"Authorization": "Bearer wrong-token-0123456789abcdef"},
            {"Authorization": f"Basic {TOKEN}"},
        ):
            async with http.post(
                f"{url}/decode", data=body, headers={"Content-Type": "application/json", **headers}
            ) as r:
                assert r.status == 401, headers
                assert r.headers["WWW-Authenticate"].startswith("Bearer")
                assert SECRET not in await r.text()


async def test_decode_with_the_token_gives_the_clear_payloads(
    served: tuple[str, EncryptionCodec],
) -> None:
    url, codec = served
    body = await encrypted_body(codec)
    headers = {
        "Authorization": f"Bearer {TOKEN}",
        "X-Namespace": "default",
        "Content-Type": "application/json",
        "Origin": UI,
    }
    async with aiohttp.ClientSession() as http:
        # Any prefix: only the last path segment names the operation.
        async with http.post(f"{url}/default/decode", data=body, headers=headers) as r:
            assert r.status == 200, await r.text()
            assert r.headers["Access-Control-Allow-Origin"] == UI
            [clear] = payloads_of(await r.text())
        assert json.loads(clear.data) == {"email": SECRET}
        # ...and encode for the UI (signals, starts typed in it) comes back decodable.
        plain = json_format.MessageToJson(Payloads(payloads=[clear]))
        async with http.post(f"{url}/encode", data=plain, headers=headers) as r:
            assert r.status == 200
            [sealed] = payloads_of(await r.text())
        assert SECRET.encode() not in sealed.data
        assert (await codec.decode([sealed]))[0] == clear

        async with http.post(
            f"{url}/decode", data=body, headers={**headers, "X-Namespace": "other"}
        ) as r:
            assert r.status == 403 and "namespace 'other'" in await r.text()
        async with http.post(f"{url}/decode", data="{not json", headers=headers) as r:
            assert r.status == 400 and "not Payloads" in await r.text()
        stranger = await EncryptionCodec(KeyRing.in_memory()).encode([clear])
        async with http.post(
            f"{url}/decode",
            headers=headers,
            data=json_format.MessageToJson(Payloads(payloads=stranger)),
        ) as r:
            assert r.status == 400
            assert stranger[0].metadata["encryption-key-id"].decode() in await r.text()


async def test_cors_preflight_answers_the_ui_origin_only(
    served: tuple[str, EncryptionCodec],
) -> None:
    url, codec = served
    ask = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace",
    }
    async with aiohttp.ClientSession() as http:
        async with http.options(f"{url}/decode", headers={"Origin": UI, **ask}) as r:
            assert r.status == 204
            assert r.headers["Access-Control-Allow-Origin"] == UI
            assert r.headers["Access-Control-Allow-Credentials"] == "true"
            assert "POST" in r.headers["Access-Control-Allow-Methods"]
            allowed = r.headers["Access-Control-Allow-Headers"].lower()
            assert "x-namespace" in allowed and "authorization" in allowed
        async with http.options(
            f"{url}/decode", headers={"Origin": "http://evil.example", **ask}
        ) as r:
            assert r.status == 403
            assert "Access-Control-Allow-Origin" not in r.headers
        async with http.post(
            f"{url}/decode",
            data=await encrypted_body(codec),
            headers={"Origin": "http://evil.example", "Authorization": f"Bearer {TOKEN}"},
        ) as r:
            assert "Access-Control-Allow-Origin" not in r.headers  # the browser hides it


async def test_signing_in_sets_the_cookie_the_ui_sends(served: tuple[str, EncryptionCodec]) -> None:
    url, codec = served
    body = await encrypted_body(codec)
    # unsafe: keep cookies of an IP host, as a browser does (aiohttp's jar would not)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(f"{url}/login", data={"token": "wrong-token"}) as r:
            assert r.status == 401
        async with http.post(f"{url}/decode", data=body) as r:
            assert r.status == 401
        async with http.post(f"{url}/login", data={"token": TOKEN}) as r:
            assert r.status == 200
            cookie = r.cookies["proctor_codec"]
            assert cookie["httponly"] and cookie["samesite"] == "Strict"
            assert TOKEN not in cookie.value
        async with http.post(f"{url}/decode", data=body, headers={"Origin": UI}) as r:
            assert r.status == 200
            assert json.loads(payloads_of(await r.text())[0].data) == {"email": SECRET}


def test_no_token_no_endpoint(tmp_path: Path) -> None:
    payload_keys.create(tmp_path / "payload-keys")
    with pytest.raises(NotConfigured, match="PROCTOR_CODEC_TOKEN"):
        endpoint_for(ProctorSettings(state_dir=tmp_path))
    with pytest.raises(NotConfigured, match="at least 16 characters"):
        endpoint_for(ProctorSettings(state_dir=tmp_path, codec_token=SecretStr("short")))
    assert endpoint_for(ProctorSettings(state_dir=tmp_path, codec_token=SecretStr(TOKEN)))
    # Without a key ring there is nothing to serve.
    with pytest.raises(payload_keys.PayloadKeysMissing):
        endpoint_for(ProctorSettings(state_dir=tmp_path / "other", codec_token=SecretStr(TOKEN)))


def test_the_command_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    payload_keys.create(tmp_path / "payload-keys")
    env = {"PROCTOR_STATE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "proctor"), "codec-server", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: the codec endpoint needs PROCTOR_CODEC_TOKEN")
