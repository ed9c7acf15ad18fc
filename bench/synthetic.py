"""Synthetic municipalities, enough for every municipality in Japan (1,741: 1,718 cities, towns and villages and
Tokyo's 23 special wards).

The official list is not bundled and nothing is downloaded at run time, so the manifests are made up: valid
全国地方公共団体コード (JIS X 0402, with the check digit) spread over the 47 prefectures, unique slugs and hosts,
and none of the codes, slugs or hosts of the manifests they are applied beside.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import tomli_w

from core.tenancy.codes import check_digit
from core.tenancy.manifest import Manifest, parse_manifest

JAPAN = 1741
"""Municipalities in Japan, special wards included."""
PREFECTURES = 47
FIRST_NUMBER = 201
"""Within a prefecture, numbers from 201 on are the cities' (towns and villages follow from 300 on)."""
HOST_DOMAIN = "bench.localhost"


def synthetic_codes(count: int, *, taken: Collection[str] = ()) -> Iterator[str]:
    """``count`` distinct 6-digit codes with correct check digits, round-robin over the prefectures.

    :raises ValueError: if ``count`` does not fit (about 800 numbers per prefecture).
    """
    taken_prefixes = {code[:5] for code in taken}
    next_number = dict.fromkeys(range(1, PREFECTURES + 1), FIRST_NUMBER)
    made = 0
    prefecture = 0
    while made < count:
        prefecture = prefecture % PREFECTURES + 1
        number = next_number[prefecture]
        prefix = f"{prefecture:02d}{number:03d}"
        while prefix in taken_prefixes:
            number += 1
            prefix = f"{prefecture:02d}{number:03d}"
        if number > 999:
            raise ValueError(f"{count} codes do not fit in {PREFECTURES} prefectures")
        next_number[prefecture] = number + 1
        made += 1
        yield f"{prefix}{check_digit(prefix)}"


def synthetic_manifest(code: str, plugins: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One manifest (as TOML data) for ``code``, with ``plugins`` (name -> settings) enabled."""
    slug = f"m{code}"
    return {
        "slug": slug,
        "name": f"合成{code[:5]}町",
        "name_en": f"Synthetic {code}",
        "code": code,
        "hosts": [f"{slug}.{HOST_DOMAIN}"],
        "timezone": "Asia/Tokyo",
        "locale": "ja",
        "plugins": {name: {"enabled": True, **settings} for name, settings in plugins.items()},
    }


def synthetic_manifests(
    count: int, plugins: Mapping[str, Mapping[str, Any]], *, beside: Collection[Manifest] = ()
) -> list[Manifest]:
    """``count`` validated manifests that can be applied together with ``beside`` (no clash of code, slug or
    host)."""
    taken = [m.code for m in beside]
    manifests = []
    for code in synthetic_codes(count, taken=taken):
        data = synthetic_manifest(code, plugins)
        manifests.append(parse_manifest(data, f"<synthetic {data['slug']}>"))
    return manifests


def write_manifests(manifests: Collection[Manifest], folder: Path) -> list[Path]:
    """Write each manifest to ``folder/<slug>.toml`` (what ``tsunagu municipality apply`` reads)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for manifest in manifests:
        path = folder / f"{manifest.slug}.toml"
        path.write_text(tomli_w.dumps(manifest.to_toml_dict()), encoding="utf-8")
        paths.append(path)
    return paths
