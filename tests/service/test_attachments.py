"""Attachments: size limit, and content checked by its first bytes against the extension."""

from __future__ import annotations

import re

import pytest

from kequn.service.attachments import AttachmentError, check_attachment, clean_name

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20


def test_matching_files_are_accepted_with_their_type():
    assert check_attachment("发票.pdf", PDF).content_type == "application/pdf"
    assert check_attachment("photo.PNG", PNG).content_type == "image/png"
    assert check_attachment("说明.txt", "屏幕有划痕".encode()).content_type == "text/plain"
    assert check_attachment("gbk.csv", "姓名,电话".encode("gbk")).content_type == "text/csv"


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("invoice.pdf", b"MZ\x90\x00" + b"\x00" * 64, "the content is a program"),
        ("photo.jpg", b"\x7fELF\x02\x01" + b"\x00" * 64, "the content is a program"),
        ("report.pdf", PNG, "the content is png, not the pdf"),
        ("setup.exe", PDF, ".exe files are not accepted"),
        ("noext", PDF, ".(none) files are not accepted"),
        ("empty.pdf", b"", "the file is empty"),
    ],
)
def test_disguised_or_unknown_files_are_refused_with_a_reason(name, data, reason):
    with pytest.raises(AttachmentError, match=re.escape(reason)) as refused:
        check_attachment(name, data)
    assert str(refused.value).startswith(name)


def test_size_limit_names_the_setting(settings):
    settings.KEQUN_SERVICE_ATTACHMENT_MAX_MB = 1
    big = PDF + b"0" * (1024 * 1024)
    with pytest.raises(
        AttachmentError, match=r"over the 1 MB limit .KEQUN_SERVICE_ATTACHMENT_MAX_MB."
    ):
        check_attachment("big.pdf", big)


def test_names_lose_paths_and_control_characters():
    assert clean_name("..\\..\\windows\\evil.pdf") == "evil.pdf"
    assert clean_name("a\x00b\n.pdf") == "ab.pdf"
