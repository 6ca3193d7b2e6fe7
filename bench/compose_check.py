"""Host-side helpers of bench/compose_check.sh (standard library only: the host needs no venv).

  apt-sources                   the Debian entries of this machine's apt configuration, deb822
  pip-conf OUT                  a pip.conf for builds (this machine's index settings, no local paths)
  wait-ready URL TIMEOUT        seconds until GET URL answers 200
  submit BASE KEY IMAGE N OUT   submit N jobs (a mix of tasks) through the native API
  wait-done BASE KEY JOBS T     wait until every job has ended; check its images can be downloaded
  strip-ports IN OUT            copy a `compose config` output without its `ports:` blocks
  no-ca BUNDLE PUBLIC...        read an image's files (a tar on stdin): none may hold a certificate
                                of BUNDLE that is not in a PUBLIC file (the distribution's roots)
"""

from __future__ import annotations

import base64
import glob
import json
import re
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def apt_sources() -> None:
    """deb822 stanzas for the Debian archives this machine's apt reads (same hosts, same suites)."""
    entries: list[tuple[str, list[str]]] = []
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for stanza in Path(path).read_text().split("\n\n"):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                name, value = line.split(":", 1)
                fields[name.strip().lower()] = value.strip()
            if fields.get("enabled", "yes") == "no" or "deb" not in fields.get("types", "").split():
                continue
            suites = [s for s in fields.get("suites", "").split() if s.startswith("bookworm")]
            for uri in fields.get("uris", "").split():
                if suites:
                    entries.append((uri, suites))
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            parts = line.split("#", 1)[0].split()
            if len(parts) >= 3 and parts[0] == "deb":
                if parts[1].startswith("["):  # options
                    parts = [parts[0]] + parts[parts.index(next(p for p in parts if p.endswith("]"))) + 1:]
                if parts[2].startswith("bookworm"):
                    entries.append((parts[1], [parts[2]]))
    merged: dict[str, list[str]] = {}
    for uri, suites in entries:
        if "debian" not in uri:  # only Debian's own archives (not vendor repositories)
            continue
        merged.setdefault(uri, [])
        merged[uri] += [s for s in suites if s not in merged[uri]]
    if not merged:
        sys.exit("no Debian bookworm archive in this machine's apt configuration")
    for uri, suites in merged.items():
        print(f"Types: deb\nURIs: {uri}\nSuites: {' '.join(suites)}\nComponents: main\n"
              "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")


def pip_conf(out: str) -> None:
    """This machine's pip index settings, minus what only exists here (file:// indexes, local
    find-links, constraint files): a build inside a container cannot see those."""
    try:
        listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], text=True,
                                capture_output=True, timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        listed = ""
    settings: dict[str, str] = {}
    for line in listed.splitlines():
        name, _, value = line.partition("=")
        key = name.split(".", 1)[-1]
        value = value.strip().strip("'\"")
        if key in ("index-url", "extra-index-url", "trusted-host", "timeout", "retries", "proxy"):
            kept = [v for v in value.split() if not v.startswith("file:") and not v.startswith("/")]
            if kept:
                settings[key] = " ".join(kept)
    with open(out, "w") as handle:
        handle.write("[global]\n")
        for key, value in settings.items():
            handle.write(f"{key} = {value}\n")
    print(", ".join(f"{k}={v}" for k, v in settings.items()) or "PyPI (no index settings)")


def _request(method: str, url: str, key: str | None = None, body: dict | None = None,
             timeout: float = 30) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as failure:
        return failure.code, failure.read()


def wait_ready(url: str, timeout: float) -> None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if _request("GET", url, timeout=2)[0] == 200:
                print(f"{time.monotonic() - start:.1f}")
                return
        except OSError:
            pass
        time.sleep(0.25)
    sys.exit(f"{url} did not answer 200 within {timeout:.0f} s")


# A mix of what the preview engine runs; several images per job for some.
def _job_body(index: int, image: str) -> dict:
    kind = index % 4
    if kind == 0:
        return {"task": "restyle", "image": image, "style": "modern", "n": 2, "seed": index}
    if kind == 1:
        return {"task": "upscale", "image": image, "scale": 2}
    if kind == 2:
        return {"task": "expand", "image": image, "expand": {"left": 0.25, "right": 0.25}}
    return {"task": "recolor", "image": image, "color": "#A3B18A", "area": "wall"}


def submit(base: str, key: str, image_path: str, count: int, out: str) -> None:
    image = "data:image/jpeg;base64," + base64.b64encode(Path(image_path).read_bytes()).decode()

    def one(index: int) -> dict:
        body = _job_body(index, image)
        status, answer = _request("POST", f"{base}/v1/jobs", key, body)
        if status != 202:
            raise SystemExit(f"submit {index}: HTTP {status} {answer[:300]!r}")
        return {"id": json.loads(answer)["id"], "task": body["task"], "n": body.get("n", 1)}

    start = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        jobs = list(pool.map(one, range(count)))
    Path(out).write_text(json.dumps(jobs))
    print(f"submitted {len(jobs)} jobs in {time.monotonic() - start:.1f} s")


def wait_done(base: str, key: str, jobs_file: str, timeout: float) -> None:
    jobs = json.loads(Path(jobs_file).read_text())
    start = time.monotonic()
    final: dict[str, dict] = {}
    while time.monotonic() - start < timeout and len(final) < len(jobs):
        for job in jobs:
            if job["id"] in final:
                continue
            status, answer = _request("GET", f"{base}/v1/jobs/{job['id']}", key)
            if status == 200 and json.loads(answer)["status"] in ("succeeded", "failed", "canceled"):
                final[job["id"]] = json.loads(answer)
        if len(final) < len(jobs):
            time.sleep(1)
    elapsed = time.monotonic() - start
    states = Counter(answer["status"] for answer in final.values())
    problems = [f"{len(jobs) - len(final)} jobs not ended after {timeout:.0f} s"] if len(final) < len(jobs) else []
    images = 0
    for job in jobs:
        answer = final.get(job["id"])
        if answer is None:
            continue
        if answer["status"] != "succeeded":
            problems.append(f"job {job['id']} {answer['status']}: {answer.get('error')}")
            continue
        if len(answer["outputs"]) != job["n"]:
            problems.append(f"job {job['id']}: {len(answer['outputs'])} outputs, expected {job['n']}")
        for output in answer["outputs"]:
            # Presigned URLs straight to the store, as a client gets them.
            status, data = _request("GET", output["url"])
            if status != 200 or not (data.startswith(b"\x89PNG") or data.startswith(b"\xff\xd8")
                                     or data[8:12] == b"WEBP"):
                problems.append(f"job {job['id']}: output {output['url'][:80]} answered {status}")
            else:
                images += 1
    print(json.dumps({"jobs": len(jobs), "states": dict(states), "images_downloaded": images,
                      "seconds": round(elapsed, 1), "problems": problems[:20]}))
    if problems:
        sys.exit(1)


def strip_ports(source: str, out: str) -> None:
    """Host networking and published ports do not mix (docker refuses both), and an override file
    cannot remove a list: so the check runs compose's own merged, normalised config (`config`)
    without its `ports:` blocks, dropping each one's more indented lines and list items."""
    kept: list[str] = []
    block: int | None = None
    for line in Path(source).read_text().splitlines():
        indent = len(line) - len(line.lstrip())
        if block is not None:
            if line.strip() and (indent > block or (indent == block and line.lstrip().startswith("- "))):
                continue
            block = None
        if line.strip() == "ports:":
            block = indent
            continue
        kept.append(line)
    Path(out).write_text("\n".join(kept) + "\n")


def _certificates(path: str) -> dict[bytes, str]:
    text = Path(path).read_text(errors="replace")
    found = re.findall(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", text, re.S)
    return {base64.b64decode("".join(body.split())): body.split()[0] for body in found}


def no_ca(bundle: str, public_files: list[str]) -> None:
    """The certificates only in `bundle` (a proxy's own CA): look for each, in PEM (its first
    base64 line) and in DER (32 bytes of it), in every file of the tar read from stdin."""
    ours = _certificates(bundle)
    public: dict[bytes, str] = {}
    for path in public_files:
        public.update(_certificates(path))
    private = {der: first for der, first in ours.items() if der not in public}
    if not private:
        print(f"{len(ours)} certificates in {bundle}, all public ones: nothing to look for")
        return
    needles = [first.encode() for first in private.values()] + [der[40:72] for der in private]
    files = hits = 0
    with tarfile.open(fileobj=sys.stdin.buffer, mode="r|") as archive:
        for member in archive:
            if not member.isfile():
                continue
            files += 1
            data = archive.extractfile(member).read()  # type: ignore[union-attr]
            for needle in needles:
                if needle in data:
                    hits += 1
                    print(f"{member.name} holds a certificate from {bundle}")
                    break
    print(f"{len(private)} non-public certificates of {bundle} looked for in {files} files: "
          f"{'found in ' + str(hits) if hits else 'in none'}")
    if hits:
        sys.exit(1)


def main() -> None:
    command, *args = sys.argv[1:] or ["help"]
    if command == "apt-sources":
        apt_sources()
    elif command == "pip-conf":
        pip_conf(args[0])
    elif command == "wait-ready":
        wait_ready(args[0], float(args[1]))
    elif command == "submit":
        submit(args[0], args[1], args[2], int(args[3]), args[4])
    elif command == "wait-done":
        wait_done(args[0], args[1], args[2], float(args[3]))
    elif command == "strip-ports":
        strip_ports(args[0], args[1])
    elif command == "no-ca":
        no_ca(args[0], args[1:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
