"""Luw's three-step upload on the wire: the signed URL a client PUTs a file's bytes to, and the
storage key behind its final URL (unguessable, ending with the client's file name, bound to the
key it was issued to). The final URL itself is the storage's URL of that key: storage owns its URLs.
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
from dataclasses import dataclass

from roomrender.api.luw.errors import SignedUrlGone, SignedUrlRefused
from roomrender.url_signing import SignatureExpired, SignatureInvalid, sign, verify

TEMPORARY_PREFIX = "x12tmp-"
TEMPORARY_SECONDS = 12 * 3600
SIGNED_URL_SECONDS = 3600
UPLOAD_PURPOSE = "luw-upload"
# A final URL's storage key carries a MAC of its key's id: finalize_upload tells this key's upload
# waiting for its bytes (400) from another key's or an unknown URL (404) without keeping state.
FINAL_URL_PURPOSE = "luw-final-url"
NONCE_CHARS = MAC_CHARS = 16
# Luw stores other files too (mp4, glb, svg...); this server takes images only as inputs.
IMAGE_EXTENSIONS = {"jpg", "jpeg", "png", "webp"}


@dataclass(frozen=True)
class SignedPut:
    """What a signed upload URL grants: storing `storage_key` once, for `owner_id`, kept `ttl` s."""

    storage_key: str
    owner_id: str
    ttl: int


def _final_mac(secret: bytes, nonce: str, owner_id: str) -> str:
    return sign(secret, FINAL_URL_PURPOSE, nonce, owner_id, expires=0)[:MAC_CHARS]


def new_storage_key(filename: str, secret: bytes, owner_id: str) -> str:
    """An unguessable storage key that ends with the client's file name, as Luw's final URLs do:
    a random nonce, the MAC binding it to the key's id, the name."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", filename).replace("..", ".").strip(".-")[-80:]
    nonce = secrets.token_hex(NONCE_CHARS // 2)
    return f"{nonce}{_final_mac(secret, nonce, owner_id)}-{safe or 'upload'}"


def issued_to(storage_key: str, secret: bytes, owner_id: str) -> bool:
    """Whether /v2/upload issued this storage key to this key."""
    head = storage_key.split("-", 1)[0]
    if len(head) != NONCE_CHARS + MAC_CHARS:
        return False
    nonce, mac = head[:NONCE_CHARS], head[NONCE_CHARS:]
    return hmac.compare_digest(_final_mac(secret, nonce, owner_id), mac)


def file_name(storage_key: str) -> str:
    """The client's file name a storage key ends with."""
    return storage_key.split("-", 1)[1]


def ttl_for(filename: str, upload_ttl_seconds: int) -> int:
    """How long an upload is kept: 12 hours for Luw's temporary (`x12tmp-`) names."""
    return TEMPORARY_SECONDS if filename.startswith(TEMPORARY_PREFIX) else upload_ttl_seconds


def signed_put_url(base_url: str, secret: bytes, put: SignedPut) -> str:
    expires = int(time.time()) + SIGNED_URL_SECONDS
    signature = sign(secret, UPLOAD_PURPOSE, *_parts(put), expires=expires)
    return (f"{base_url.rstrip('/')}/v2/upload/{put.storage_key}?owner={put.owner_id}"
            f"&ttl={put.ttl}&expires={expires}&signature={signature}")


def verified_put(storage_key: str, query: dict[str, str], secret: bytes) -> SignedPut:
    """What a PUT to a signed URL may do (403 when altered, 410 when expired)."""
    try:
        put = SignedPut(storage_key, query.get("owner", ""), int(query.get("ttl", "")))
        verify(secret, UPLOAD_PURPOSE, *_parts(put), expires=int(query.get("expires", "")),
               signature=query.get("signature", ""))
    except (ValueError, SignatureInvalid):
        raise SignedUrlRefused("the signed URL is not valid (altered or not signed by this server)"
                               ) from None
    except SignatureExpired:
        raise SignedUrlGone("the signed URL has expired; ask /v2/upload for a new one") from None
    return put


def _parts(put: SignedPut) -> tuple[str, ...]:
    return (put.storage_key, put.owner_id, str(put.ttl))
