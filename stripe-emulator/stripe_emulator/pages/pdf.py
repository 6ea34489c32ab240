"""A minimal one-page PDF of text lines (valid enough for any viewer; no dependency).

Helvetica with WinAnsiEncoding (Windows-1252), so the multiplication sign, dashes, the euro
sign and bullets print as themselves; any other character becomes ``?``. The content stream
is not compressed: the text is plain in the bytes.
"""

from __future__ import annotations

_ENCODING = "cp1252"  # WinAnsiEncoding


def _literal(line: str) -> str:
    return "(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def text_pdf(lines: list[str]) -> bytes:
    text = "BT /F1 11 Tf 50 780 Td 14 TL " + " ".join(f"{_literal(x)} '" for x in lines) + " ET"
    size = len(text.encode(_ENCODING, "replace"))
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {size} >>\nstream\n{text}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = "%PDF-1.4\n"
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out.encode(_ENCODING, "replace")))
        out += f"{number} 0 obj\n{obj}\nendobj\n"
    xref = len(out.encode(_ENCODING, "replace"))
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n"
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    return out.encode(_ENCODING, "replace")
