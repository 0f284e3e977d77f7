"""Extract the numbered items of the two policy documents into kb/policies/*.yml.

This is how kb/policies/ was first written from the seed documents, kept so that the
extraction can be repeated and checked: `python scripts/extract_policies.py --check`
compares the committed files with a fresh extraction. A new year's list in another
layout gets its own YAML file (by hand or by a new extractor); the assistant reads only
the YAML, never this script.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "kb" / "sources"
OUT = ROOT / "kb" / "policies"

DOC_2021 = ("002_321999f55406a845.txt", "渝中府办〔2021〕16号", 2021, 52)
DOC_2023 = ("003_56de8b6776a6fb06.txt", "渝中府办〔2023〕32号", 2023, 90)

# Page furniture of the 2021 PDF conversion: running headers and rules between pages.
PAGE_NOISE = re.compile(r"^(## 重庆市渝中区人民政府行政规范性文件|---)\s*$")
CN_NUM = "一二三四五六七八九十"
SECTION = re.compile(
    r"[（(]\s*([" + CN_NUM + r"]{1,3})\s*[）)]\s*([^（(]+?)\s*[（(]牵头单位\s*[:：]\s*(.+?)[）)]"
)
PART = re.compile(r"(?:^|\n)#*\s*([" + CN_NUM + r"]{1,2})、([^\n]+)")


def unit_ids(departments: list[dict]) -> dict[str, str]:
    """Map every name and alias a document may use to a department id."""
    names: dict[str, str] = {}
    for dept in departments:
        for name in [dept["name"], dept.get("full_name"), *dept.get("aliases", [])]:
            if name:
                names[name] = dept["id"]
    return names


def parse_units(text: str, names: dict[str, str]) -> list[str]:
    """Turn '区财政局、区科技局等相关部门' into ['caizheng', 'keji', 'qu_xiangguan_bumen']."""
    ids: list[str] = []
    text = text.strip().rstrip("。")
    if text.endswith("等相关部门"):
        text = text[: -len("等相关部门")]
        tail = ["qu_xiangguan_bumen"]
    else:
        tail = []
    for name in [text] if text in names else re.split(r"[、，,]", text):
        name = name.strip()
        if not name:
            continue
        if name not in names:
            raise SystemExit(f"unknown unit in seeds: {name!r}: add it to kb/departments.yml")
        ids.append(names[name])
    return ids + tail


def split_lead_co(text: str, names: dict[str, str]) -> tuple[list[str], list[str]]:
    """Split '区金融办，责任单位：区财政局…' into lead ids and co-responsible ids."""
    lead_text, *rest = re.split(r"[,，;；]\s*责任单位\s*[:：]", text, maxsplit=1)
    return parse_units(lead_text, names), parse_units(rest[0], names) if rest else []


def clean(raw: str) -> str:
    """Drop page furniture and join the lines a page break split mid-sentence."""
    lines: list[str] = []
    for line in raw.splitlines():
        line = line.strip()
        if not line or PAGE_NOISE.match(line):
            continue
        continues = lines and not re.search(r"[。）)：:]$", lines[-1]) and not lines[-1].startswith("#")
        if continues and not re.match(r"[#（(\d*]", line):
            lines[-1] += line
        else:
            lines.append(line)
    return "\n".join(lines)


def find_items(text: str, count: int) -> list[tuple[int, int]]:
    """Start offsets of items 1..count, searched in order so that '2021 年' never matches."""
    starts: list[tuple[int, int]] = []
    pos = 0
    for n in range(1, count + 1):
        pattern = re.compile(r"(?:^|\n|[。）)])\s*(" + str(n) + r")\s*[.．]\s*(?=\S)")
        match = pattern.search(text, pos)
        if not match:
            raise SystemExit(f"item {n} not found")
        starts.append((n, match.start(1)))
        pos = match.end()
    return starts


def extract(doc: tuple[str, str, int, int], names: dict[str, str]) -> list[dict]:
    file, number, year, count = doc
    text = clean((SOURCES / file).read_text(encoding="utf-8"))
    end_marker = re.search(r"\n#*\s*(三、组织保障|五、加强优化营商环境实施保障)", text)
    body_end = end_marker.start() if end_marker else len(text)
    starts = find_items(text, count)
    sections = [(m.start(), m) for m in SECTION.finditer(text)]
    parts = [(m.start(), m) for m in PART.finditer(text)]
    items = []
    for index, (n, start) in enumerate(starts):
        stop = starts[index + 1][1] if index + 1 < len(starts) else body_end
        chunk = text[start:stop]
        # A section header that follows the item belongs to the next item.
        next_header = [pos for pos, _ in sections if start < pos < stop]
        next_part = [pos for pos, _ in parts if start < pos < stop]
        cut = min(next_header + next_part + [stop])
        chunk = text[start:cut]
        body = re.sub(r"^\d+\s*[.．]\s*", "", chunk).replace("\n", "").strip()
        body = re.sub(r"[（(][一二三四五六七八九十]+[）)]\s*$", "", body).strip()
        body = re.sub(r"#+\s*$", "", body).strip()
        section = max((m for pos, m in sections if pos < start), key=lambda m: m.start(), default=None)
        part = max((m for pos, m in parts if pos < start), key=lambda m: m.start(), default=None)
        own_lead = re.search(r"[（(]牵头单位\s*[:：](.+?)[）)]\s*$", body)
        if own_lead:  # 2021 items 47-52 name their own units after the text
            lead, co = split_lead_co(own_lead.group(1), names)
            body = body[: own_lead.start()].strip()
            category = re.sub(r"^[（(].+?[）)]\s*", "", _subsection_title(text, start))
        else:
            lead, co = split_lead_co(section.group(3), names)
            category = section.group(2).strip().rstrip("。")
        record = {
            "id": f"p{year}_{n:03d}",
            "doc": number,
            "year": year,
            "item": n,
            "part": f"{part.group(1)}、{part.group(2).strip()}" if part else None,
            "category": category,
        }
        if year == 2021:
            record["title"] = body.split("。", 1)[0]
        record.update({"text": body, "lead": lead, "co": co,
                       "source": {"file": file, "ref": f"第{n}条"}})
        if record["part"] is None:
            del record["part"]
        items.append(record)
    return items


def _subsection_title(text: str, start: int) -> str:
    """The nearest '(一) 提升政策制定…' heading above an item that names its own units."""
    heads = list(re.finditer(r"[（(]\s*[一二三四五六七八九十]\s*[）)]\s*([^\n（(]+)", text[:start]))
    return heads[-1].group(1).strip().rstrip("。") if heads else ""


def render(items: list[dict], doc: tuple[str, str, int, int]) -> str:
    header = (
        f"# {doc[1]}: all {doc[3]} numbered items, extracted from kb/sources/{doc[0]}\n"
        "# by scripts/extract_policies.py. lead/co are department ids (kb/departments.yml).\n"
    )
    return header + yaml.safe_dump({"policies": items}, allow_unicode=True, sort_keys=False, width=10_000, default_flow_style=None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if kb/policies/ differs")
    args = parser.parse_args()
    departments = yaml.safe_load((ROOT / "kb" / "departments.yml").read_text(encoding="utf-8"))
    names = unit_ids(departments["departments"])
    OUT.mkdir(exist_ok=True)
    status = 0
    for doc in (DOC_2021, DOC_2023):
        text = render(extract(doc, names), doc)
        target = OUT / f"{doc[2]}.yml"
        if args.check:
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                print(f"{target} differs from a fresh extraction", file=sys.stderr)
                status = 1
        else:
            target.write_text(text, encoding="utf-8")
    return status


if __name__ == "__main__":
    sys.exit(main())
