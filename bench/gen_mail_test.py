#!/usr/bin/env python3
# File: bench/gen_mail_test.py — tests of the benchmark's mail generator: determinism, the
# N/10-is-a-prefix property the RSS comparison relies on, well-formed MIME, and the mix.
import email
import email.policy
import os
import re
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_mail  # noqa: E402

SAMPLE = 600


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


class GenMailTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.msgs = [gen_mail.make_message(1, i) for i in range(SAMPLE)]

    def test_same_seed_same_bytes_other_seed_other_bytes(self):
        self.assertEqual(gen_mail.make_message(1, 7), self.msgs[7])
        self.assertNotEqual(gen_mail.make_message(2, 7)[0], self.msgs[7][0])

    def test_smaller_mailbox_is_a_prefix_of_the_larger(self):
        with tempfile.TemporaryDirectory() as tmp:
            for count in (30, 3):
                subprocess.run([sys.executable, os.path.join(HERE, "gen_mail.py"), "--maildir",
                                os.path.join(tmp, str(count)), "--count", str(count)],
                               check=True, stdout=subprocess.DEVNULL)
            small = sorted(os.listdir(os.path.join(tmp, "3", "new")))
            large = sorted(os.listdir(os.path.join(tmp, "30", "new")))
            self.assertEqual(len(small), 3)
            self.assertEqual(len(large), 30)
            for name in small:
                with open(os.path.join(tmp, "3", "new", name), "rb") as a, \
                        open(os.path.join(tmp, "30", "new", name), "rb") as b:
                    self.assertEqual(a.read(), b.read())
                size = int(re.search(r",S=(\d+)$", name).group(1))
                self.assertEqual(size, os.path.getsize(os.path.join(tmp, "3", "new", name)))

    def test_every_message_is_well_formed_and_unique(self):
        ids, subjects = set(), set()
        for i, (raw, _) in enumerate(self.msgs):
            msg = parse(raw)
            self.assertEqual(msg.defects, [], f"message {i}")
            for part in msg.walk():
                self.assertEqual(part.defects, [], f"message {i}")
                if not part.is_multipart():
                    part.get_content()  # decodes QP/base64 and charsets or raises
            subject = str(msg["subject"])
            self.assertIn(f"REQ-1-{i:06d}", subject)
            ids.add(msg["message-id"])
            subjects.add(subject)
            for line in raw.split(b"\n"):
                self.assertLessEqual(len(line), 998, f"message {i}")
        self.assertEqual(len(ids), SAMPLE)
        self.assertEqual(len(subjects), SAMPLE)

    def test_encoded_words_decode_and_stay_short(self):
        encoded = 0
        for raw, kinds in self.msgs:
            if "non-ascii" not in kinds:
                continue
            encoded += 1
            header = raw.split(b"\nSubject: ", 1)[1].split(b"\nContent-", 1)[0].decode()
            for word in re.findall(r"=\?UTF-8\?[BQ]\?[^?]*\?=", header):
                self.assertLessEqual(len(word), 75)
            self.assertTrue(any(ord(c) > 127 for c in str(parse(raw)["subject"])))
        self.assertGreater(encoded, SAMPLE * 0.08)

    def test_replies_name_an_earlier_message_and_a_ticket(self):
        replies = 0
        for i, (raw, kinds) in enumerate(self.msgs):
            if "reply" not in kinds:
                continue
            replies += 1
            msg = parse(raw)
            self.assertRegex(str(msg["subject"]), r"^Re: .* #\d+$")
            parent = int(re.search(r"<req-1-(\d+)@", msg["in-reply-to"]).group(1))
            self.assertLess(parent, i)
            self.assertIn("\n> ", msg.get_body(("plain",)).get_content())
        self.assertGreater(replies, SAMPLE * 0.10)

    def test_mix_has_a_few_large_attachments_of_one_to_two_megabytes(self):
        big = 0
        for raw, kinds in self.msgs:
            atts = list(parse(raw).iter_attachments())
            if "big-attachment" in kinds:
                big += 1
                self.assertEqual(len(atts), 1)
                size = len(atts[0].get_content())
                self.assertGreaterEqual(size, 1_000_000)
                self.assertLessEqual(size, 2_000_100)
            elif "attachment" in kinds:
                self.assertIn(len(atts), (1, 2))
            else:
                self.assertEqual(atts, [])
        self.assertGreaterEqual(big, SAMPLE * 0.03)
        self.assertLessEqual(big, SAMPLE * 0.05)
        html = sum("html" in k for _, k in self.msgs)
        self.assertGreater(html, SAMPLE * 0.3)


if __name__ == "__main__":
    unittest.main()
