#!/usr/bin/env python3
# File: bench/gen_mail.py — deterministic generator of realistic help-desk mail into a Maildir.
#
# Every message depends only on (seed, index), so the first N/10 messages of a 10,000-message
# run are the same bytes as a 1,000-message run, and two runs with one seed are identical.
# The mix: plain text, multipart/alternative HTML, replies with "#id" and quoted text,
# RFC 2047 non-ASCII subjects, small PDF/PNG-like attachments, and a few 1-2 MB attachments.
# Files go straight into MAILDIR/new (no tmp/ rename: nobody reads the folder while we write).
"""Usage: gen_mail.py --maildir DIR --count N [--seed S] [--big-percent P]"""
import argparse
import base64
import email.utils
import json
import os
import quopri
import random
import sys
import unicodedata

FIRST = ["Anna", "Ben", "Chloé", "David", "Elif", "Farid", "Greta", "Hiro", "Inès", "Jonas",
         "Katarzyna", "Liam", "María", "Noah", "Olga", "Priya", "Quentin", "Rosa", "Søren",
         "Tomás", "Uma", "Viktor", "Wen", "Xavier", "Yuki", "Zoë"]
LAST = ["Andersen", "Bauer", "Costa", "Dubois", "Eriksen", "Fischer", "García", "Horvat",
        "Ivanov", "Jensen", "Kowalski", "López", "Müller", "Nagy", "O'Brien", "Petrov",
        "Rossi", "Schmidt", "Tanaka", "Novák", "Weber", "Yılmaz", "Zhang"]
TOPICS = ["printer on the third floor jams", "VPN drops every hour", "new laptop for onboarding",
          "password reset for the HR portal", "shared drive is read-only", "Outlook keeps asking "
          "for a password", "projector in room B2 shows no signal", "license for the CAD suite",
          "phone extension not ringing", "access to the finance folder", "monitor flickers",
          "Wi-Fi in the warehouse is slow", "badge does not open the side door",
          "Teams meeting audio echoes", "invoice PDF will not open", "backup job failed last "
          "night", "keyboard missing keys", "request for a second screen", "calendar invites "
          "arrive twice", "scanner sends empty pages"]
NON_ASCII = ["Drucker im Büro läuft nicht — dringend", "Problème d'accès à la messagerie",
             "Не работает принтер в бухгалтерии", "会議室のプロジェクターが故障しています",
             "Ошибка входа в систему", "Café-Maschine: Netzwerkfehler ½", "Überweisung hängt",
             "Solicitud de acceso — contraseña caducada", "Αίτημα για νέο λογαριασμό",
             "Zgłoszenie: drukarka nie działa"]
WORDS = ("the a user reports that since this morning it is not working again after restart we "
         "tried cable screen network please could you check as soon as possible thanks office "
         "update error message shows code service desk laptop account login reset folder "
         "printer meeting room access request approved manager urgent tomorrow yesterday "
         "again still same issue ticket team building floor").split()
UMLAUT_WORDS = "größer Straße naïve façade déjà über ñandú łódź žluťoučký".split()


def person(rng):
    first, last = rng.choice(FIRST), rng.choice(LAST)
    plain = unicodedata.normalize("NFKD", f"{first}.{last}".lower())
    addr = plain.encode("ascii", "ignore").decode().replace("'", "").replace("ı", "i")
    return f"{first} {last}", f"{addr}@users.example.com"


def q_encode(data):
    return "".join(chr(c) if (48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122) else
                   "_" if c == 32 else f"={c:02X}" for c in data)


def encode_word(text, rng):
    """RFC 2047, B or Q, split on character boundaries so each encoded word is <= 75 chars."""
    use_b = rng.random() < 0.5
    encode = (lambda b: base64.b64encode(b).decode()) if use_b else q_encode
    prefix = "=?UTF-8?B?" if use_b else "=?UTF-8?Q?"
    words, chunk = [], b""
    for ch in text:
        if len(encode(chunk + ch.encode("utf-8"))) > 75 - len(prefix) - 2:
            words.append(chunk)
            chunk = b""
        chunk += ch.encode("utf-8")
    words.append(chunk)
    return "\n ".join(prefix + encode(w) + "?=" for w in words)


def display(name, addr, rng):
    if all(ord(c) < 128 for c in name):
        return email.utils.formataddr((name, addr))
    return f"{encode_word(name, rng)} <{addr}>"


def paragraph(rng, non_ascii):
    words = [rng.choice(WORDS) for _ in range(rng.randint(12, 60))]
    if non_ascii:
        words += [rng.choice(UMLAUT_WORDS) for _ in range(3)]
        rng.shuffle(words)
    text = " ".join(words).capitalize() + "."
    lines, line = [], ""
    for w in text.split():
        if len(line) + len(w) + 1 > 72:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}" if line else w
    lines.append(line)
    return "\n".join(lines)


def text_part(body, non_ascii):
    if non_ascii:
        enc = quopri.encodestring(body.encode("utf-8")).decode("ascii")
        return ("Content-Type: text/plain; charset=utf-8\n"
                "Content-Transfer-Encoding: quoted-printable\n\n" + enc + "\n")
    return "Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n\n" + \
        body + "\n"


def html_part(paras, non_ascii):
    import html as h
    inner = "\n".join(f"<p>{h.escape(p).replace(chr(10), ' ')}</p>" for p in paras)
    doc = (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><style>body{{font-family:"
           f"Calibri,sans-serif;font-size:11pt}}</style></head>\n<body>\n{inner}\n"
           f"<p>Kind regards,<br><b>IT user</b></p>\n</body></html>")
    enc = quopri.encodestring(doc.encode("utf-8")).decode("ascii")
    return ("Content-Type: text/html; charset=utf-8\n"
            "Content-Transfer-Encoding: quoted-printable\n\n" + enc + "\n")


def multipart(subtype, boundary, parts):
    out = [f"Content-Type: multipart/{subtype}; boundary=\"{boundary}\"\n\n"
           "This is a multi-part message in MIME format.\n"]
    for p in parts:
        out.append(f"--{boundary}\n{p}")
    out.append(f"--{boundary}--\n")
    return "".join(out)


def attachment(rng, index, n, big):
    size = rng.randint(1_000_000, 2_000_000) if big else rng.randint(4_000, 150_000)
    if rng.random() < 0.5:
        name, ctype = f"scan-{index:06d}-{n}.pdf", "application/pdf"
        data = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + rng.randbytes(size)
    else:
        name, ctype = f"screenshot-{index:06d}-{n}.png", "image/png"
        data = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + rng.randbytes(size)
    b64 = base64.encodebytes(data).decode("ascii")
    return (f"Content-Type: {ctype}; name=\"{name}\"\n"
            f"Content-Disposition: attachment; filename=\"{name}\"\n"
            f"Content-Transfer-Encoding: base64\n\n{b64}")


def make_message(seed, index):
    """Returns (bytes, kinds) for message `index`; depends on (seed, index) only."""
    rng = random.Random(f"{seed}:{index}")
    kinds = []
    name, addr = person(rng)
    non_ascii = rng.random() < 0.12
    reply = index > 0 and rng.random() < 0.15
    html = rng.random() < 0.40
    roll = rng.random()
    big, small = roll < BIG_FRACTION, BIG_FRACTION <= roll < BIG_FRACTION + 0.18
    serial = f"REQ-{seed}-{index:06d}"
    topic = rng.choice(NON_ASCII) if non_ascii else rng.choice(TOPICS)
    subject = f"{topic} ({serial})"
    headers = [f"Return-Path: <{addr}>",
               f"From: {display(name, addr, rng)}",
               "To: IT Service Desk <support@helpdesk.example.com>",
               f"Date: {email.utils.formatdate(1_700_000_000 + index * 61, localtime=False)}",
               f"Message-ID: <{serial.lower()}@users.example.com>",
               "MIME-Version: 1.0"]
    paras = [paragraph(rng, non_ascii) for _ in range(rng.randint(1, 6))]
    body = "\n\n".join(paras)
    if reply:
        kinds.append("reply")
        ticket = rng.randint(1, max(1, index // 2))
        parent = f"<req-{seed}-{rng.randint(0, index - 1):06d}@users.example.com>"
        subject = f"Re: {subject} #{ticket}"
        headers += [f"In-Reply-To: {parent}", f"References: {parent}"]
        quoted = "\n".join("> " + ln for ln in paragraph(rng, False).split("\n"))
        body += f"\n\nOn Tue, 14 Nov 2023, IT Service Desk wrote:\n{quoted}\n"
    if non_ascii:
        kinds.append("non-ascii")
        headers.append("Subject: " + encode_word(subject, rng))
    else:
        headers.append(f"Subject: {subject}")
    content = text_part(body, non_ascii)
    if html:
        kinds.append("html")
        content = multipart("alternative", f"alt-{serial}", [content, html_part(paras, non_ascii)])
    if big or small:
        kinds.append("big-attachment" if big else "attachment")
        count = 1 if big else rng.randint(1, 2)
        atts = [attachment(rng, index, n, big) for n in range(count)]
        content = multipart("mixed", f"mix-{serial}", [content] + atts)
    if not kinds:
        kinds.append("plain")
    return ("\n".join(headers) + "\n" + content).encode("utf-8"), kinds


BIG_FRACTION = 0.04


def main():
    global BIG_FRACTION
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--maildir", required=True, help="Maildir to fill (new/ is written)")
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--big-percent", type=float, default=4.0, help="share with 1-2 MB attachment")
    args = ap.parse_args()
    BIG_FRACTION = args.big_percent / 100.0
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(args.maildir, sub), exist_ok=True)
    total, tally = 0, {}
    for i in range(args.count):
        data, kinds = make_message(args.seed, i)
        for k in kinds:
            tally[k] = tally.get(k, 0) + 1
        # Dovecot reads S= (physical size) from the name instead of stat()ing the file.
        fname = f"{1_700_000_000 + i}.M{i}P{args.seed}.bench-gen,S={len(data)}"
        with open(os.path.join(args.maildir, "new", fname), "wb") as f:
            f.write(data)
        total += len(data)
    json.dump({"messages": args.count, "bytes": total, "kinds": tally}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
