"""`uuid4_hex`: what `uuid.uuid4().hex` gives, a version 4 RFC 4122 UUID in hex, every time."""

import uuid

from forgestack_queue.ids import uuid4_hex


def test_every_id_is_a_version_4_uuid_in_hex() -> None:
    ids = [uuid4_hex() for _ in range(2000)]
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert parsed.hex == text
    assert len(set(ids)) == len(ids)
