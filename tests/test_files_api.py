"""The Files API end to end: the client in ``client/files.py`` against the simulator's
``/v1/files`` over real HTTP on 127.0.0.1 (upload, list, retrieve, content, delete, limits,
``ms://`` references in chat, interrupted uploads)."""

from __future__ import annotations

import asyncio
import io

import httpx
import pytest
from PIL import Image

from kimi_jupyter.client import AsyncFilesClient, FilesClient
from kimi_jupyter.errors import (
    FileLimitError,
    FilesUnsupportedError,
    KimiError,
    RemoteFileNotFoundError,
    ResponseTooLargeError,
)
from kimi_jupyter.settings import resolve_settings
from kimi_jupyter.testing import KimiSimulator
from kimi_jupyter.testing.files import FileLimits
from kimi_jupyter.testing.samples import make_docx, make_pdf

KEY = "sk-test-simulator"
AUTH = {"Authorization": f"Bearer {KEY}"}


def settings_for(sim: KimiSimulator, provider: str = "moonshot", **extra):
    return resolve_settings(
        explicit={"base_url": sim.base_url, "api_key": KEY, "provider": provider, "retry_backoff": 0.01, **extra},
        environ={},
    )


def png_bytes(width: int = 56, height: int = 28) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def sim():
    with KimiSimulator(api_key=KEY) as simulator:
        yield simulator


def test_upload_list_retrieve_content_delete_round_trip(sim, tmp_path):
    report = tmp_path / "report.pdf"
    report.write_bytes(make_pdf(["Quarterly revenue rose 12%.", "Costs were flat."]))
    with FilesClient(settings_for(sim)) as files:
        uploaded = files.upload(report, "file-extract")
        assert uploaded.filename == "report.pdf"
        assert uploaded.purpose == "file-extract"
        assert uploaded.bytes == report.stat().st_size
        assert [f.id for f in files.list()] == [uploaded.id]
        assert files.retrieve(uploaded.id) == uploaded
        text = files.text(uploaded.id)
        assert "Quarterly revenue rose 12%." in text and "Costs were flat." in text
        assert files.delete(uploaded.id) is True
        assert files.list() == []
        with pytest.raises(RemoteFileNotFoundError, match=uploaded.id):
            files.retrieve(uploaded.id)
        with pytest.raises(RemoteFileNotFoundError):
            files.delete(uploaded.id)
    upload = next(r for r in sim.requests if r.method == "POST")
    assert upload.headers["content-type"].startswith("multipart/form-data")
    assert upload.headers["authorization"] == f"Bearer {KEY}"


def test_wire_shapes_of_the_simulator_match_moonshot(sim):
    image = png_bytes()
    resp = httpx.post(sim.base_url + "/files", headers=AUTH, files={"file": ("red.png", image, "image/png")},
                      data={"purpose": "image"})
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) >= {"id", "object", "bytes", "created_at", "filename", "purpose", "status"}
    assert body["object"] == "file" and body["bytes"] == len(image) and body["purpose"] == "image"
    # Content of a non-extract file is its bytes; of an unknown id a 404 in Moonshot's shape.
    content = httpx.get(f"{sim.base_url}/files/{body['id']}/content", headers=AUTH)
    assert content.content == image
    missing = httpx.get(sim.base_url + "/files/cs-nope", headers=AUTH)
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "resource_not_found_error"
    deleted = httpx.delete(f"{sim.base_url}/files/{body['id']}", headers=AUTH).json()
    assert deleted == {"id": body["id"], "object": "file", "deleted": True}
    # Auth applies to /files as to chat.
    assert httpx.get(sim.base_url + "/files").status_code == 401


def test_upload_refusals_name_the_problem(sim):
    bad_purpose = httpx.post(sim.base_url + "/files", headers=AUTH, files={"file": ("a.txt", b"hi")},
                             data={"purpose": "fine-tune"})
    assert bad_purpose.status_code == 400 and "purpose" in bad_purpose.json()["error"]["message"]
    no_file = httpx.post(sim.base_url + "/files", headers=AUTH, data={"purpose": "image"},
                         files={"other": ("a.txt", b"hi")})
    assert no_file.status_code == 400 and "'file'" in no_file.json()["error"]["message"]
    json_body = httpx.post(sim.base_url + "/files", headers=AUTH, json={"purpose": "image"})
    assert json_body.status_code == 400 and "multipart" in json_body.json()["error"]["message"]
    not_image = httpx.post(sim.base_url + "/files", headers=AUTH, files={"file": ("x.png", b"not a png")},
                           data={"purpose": "image"})
    assert not_image.status_code == 400 and "supported image" in not_image.json()["error"]["message"]
    with FilesClient(settings_for(sim)) as files, pytest.raises(KimiError, match="Unknown file purpose"):
        files.upload(b"x", "fine-tune", filename="a.txt")
    assert sim.files.all() == []


def test_documents_of_every_kind_are_extracted(sim):
    with FilesClient(settings_for(sim)) as files:
        docx = files.upload(make_docx(["Alpha paragraph", "Beta paragraph"]), "file-extract", filename="notes.docx")
        md = files.upload("# Title\n\nbody ü".encode(), "file-extract", filename="readme.md")
        assert files.text(docx.id) == "Alpha paragraph\nBeta paragraph"
        assert files.text(md.id) == "# Title\n\nbody ü"
        with pytest.raises(KimiError, match="unsupported file type"):
            files.upload(b"\x00\x01binary", "file-extract", filename="blob.exe")


def test_limits_per_file_count_and_total(tmp_path):
    limits = FileLimits(max_file_bytes=2000, max_files=2, max_total_bytes=3000)
    with KimiSimulator(api_key=KEY, file_limits=limits) as sim, FilesClient(settings_for(sim)) as files:
        with pytest.raises(FileLimitError, match="exceeds the limit of 2000 bytes"):
            files.upload(b"a" * 2500, "batch", filename="big.jsonl")
        files.upload(b"a" * 1500, "batch", filename="one.jsonl")
        with pytest.raises(FileLimitError, match="storage quota"):
            files.upload(b"b" * 1600, "batch", filename="two.jsonl")
        files.upload(b"c" * 100, "batch", filename="two.jsonl")
        with pytest.raises(FileLimitError, match="too many files") as caught:
            files.upload(b"d", "batch", filename="three.jsonl")
        assert "%kimi files clear" in str(caught.value)
        assert len(files.list()) == 2


def test_client_refuses_files_over_100_mb_before_sending(sim, tmp_path):
    big = tmp_path / "huge.mp4"
    with big.open("wb") as handle:
        handle.truncate(100 * 1024 * 1024 + 1)  # sparse: no 100 MB written to disk
    with FilesClient(settings_for(sim)) as files, pytest.raises(FileLimitError, match="at most 100 MB"):
        files.upload(big, "video")
    assert not [r for r in sim.requests if r.method == "POST"]


def test_progress_is_reported_up_to_the_whole_size(sim):
    data = bytes(range(256)) * 4096 * 3  # 3 MiB
    seen: list[tuple[int, int]] = []
    with FilesClient(settings_for(sim)) as files:
        uploaded = files.upload(data, "batch", filename="rows.jsonl", progress=lambda s, t: seen.append((s, t)))
        assert files.content(uploaded.id) == data
    assert len(seen) > 10
    assert all(total == len(data) for _, total in seen)
    assert [sent for sent, _ in seen] == sorted(sent for sent, _ in seen)
    assert seen[-1][0] == len(data)


def test_ms_references_resolve_in_chat_and_unknown_ids_are_refused(sim):
    with FilesClient(settings_for(sim)) as files:
        image = files.upload(png_bytes(), "image", filename="red.png")
        extract = files.upload(b"text", "file-extract", filename="a.txt")

    def chat(url: str) -> httpx.Response:
        part = {"type": "image_url", "image_url": {"url": url}}
        message = {"role": "user", "content": [part, {"type": "text", "text": "What is this?"}]}
        return httpx.post(sim.base_url + "/chat/completions", headers=AUTH,
                          json={"model": "kimi-k2.5", "messages": [message]})

    ok = chat(f"ms://{image.id}")
    assert ok.status_code == 200
    assert "uploaded as a file" in ok.json()["choices"][0]["message"]["content"]
    # A 56x28 image costs 2 patches + overhead, priced from the uploaded bytes.
    plain = httpx.post(sim.base_url + "/chat/completions", headers=AUTH, json={
        "model": "kimi-k2.5", "messages": [{"role": "user", "content": [{"type": "text", "text": "What is this?"}]}]})
    assert ok.json()["usage"]["prompt_tokens"] - plain.json()["usage"]["prompt_tokens"] == 4 + 2
    unknown = chat("ms://cs-never-uploaded")
    assert unknown.status_code == 400
    assert "cs-never-uploaded" in unknown.json()["error"]["message"]
    wrong_purpose = chat(f"ms://{extract.id}")
    assert wrong_purpose.status_code == 400 and "purpose" in wrong_purpose.json()["error"]["message"]


def test_content_reads_are_bounded(sim):
    with FilesClient(settings_for(sim)) as files:
        uploaded = files.upload(b"x" * 10_000, "batch", filename="rows.jsonl")
        with pytest.raises(ResponseTooLargeError, match="passed 1,000 bytes"):
            files.content(uploaded.id, max_bytes=1000)


def test_a_download_goes_to_a_file_as_it_arrives_with_the_same_bound(sim, tmp_path):
    data = b"".join(b'{"custom_id": "row-%d"}\n' % i for i in range(20_000))
    with FilesClient(settings_for(sim)) as files:
        uploaded = files.upload(data, "batch", filename="rows.jsonl")
        with open(tmp_path / "out.jsonl", "w+b") as sink:
            sink.write(b"left over from an earlier attempt")
            assert files.download(uploaded.id, sink) == len(data)
            sink.seek(0)
            assert sink.read() == data
        with open(tmp_path / "small.jsonl", "w+b") as sink, \
                pytest.raises(ResponseTooLargeError, match="passed 1,000 bytes"):
            files.download(uploaded.id, sink, max_bytes=1000)


def test_interrupted_upload_leaves_nothing_on_the_server(sim):
    data = b"v" * (2 * 1024 * 1024)

    def interrupt(sent: int, total: int) -> None:
        if sent > total // 2:
            raise KeyboardInterrupt

    with FilesClient(settings_for(sim)) as files:
        with pytest.raises(KeyboardInterrupt):
            files.upload(data, "video", filename="clip.mp4", progress=interrupt)
        assert files.list() == []


class _LoseFirstUploadAnswer(httpx.HTTPTransport):
    """A real HTTP transport that drops the answer of the first upload after the server stored it."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "POST" and request.url.path.endswith("/files") and not self.dropped:
            self.dropped += 1
            response.read()
            response.close()
            raise httpx.ReadError("connection reset", request=request)
        return response


def test_an_upload_whose_answer_was_lost_is_not_left_behind(sim):
    transport = _LoseFirstUploadAnswer()
    with httpx.Client(transport=transport) as http:
        files = FilesClient(settings_for(sim), http=http)
        uploaded = files.upload(b"frame" * 1000, "video", filename="clip.mp4")
    assert transport.dropped == 1
    assert [f.id for f in sim.files.all()] == [uploaded.id]
    assert len([r for r in sim.requests if r.method == "DELETE"]) == 1


def test_async_client_does_the_same(sim):
    async def main() -> tuple[list[str], str, list[tuple[int, int]]]:
        seen: list[tuple[int, int]] = []
        async with AsyncFilesClient(settings_for(sim)) as files:
            uploaded = await files.upload(make_pdf(["Async page"]), "file-extract", filename="a.pdf",
                                          progress=lambda s, t: seen.append((s, t)))
            ids = [f.id for f in await files.list()]
            text = await files.text(uploaded.id)
            assert (await files.retrieve(uploaded.id)).id == uploaded.id
            await files.delete(uploaded.id)
            with pytest.raises(RemoteFileNotFoundError):
                await files.content(uploaded.id)
            return ids, text, seen

    ids, text, seen = asyncio.run(main())
    assert len(ids) == 1 and "Async page" in text and seen[-1][0] == seen[-1][1]
    assert sim.files.all() == []


def test_providers_without_a_files_api_say_so(sim):
    with pytest.raises(FilesUnsupportedError, match="no Files API"):
        FilesClient(settings_for(sim, provider="openrouter"))
    # The gateway dialects of the simulator have no /files either.
    resp = httpx.get(sim.url_for("openrouter") + "/files", headers=AUTH)
    assert resp.status_code == 404

