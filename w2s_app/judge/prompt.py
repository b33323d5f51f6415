"""The judge's rubric: a versioned prompt file in rubrics/, rendered into chat messages.

The file has three sections, `## system`, `## user` and `## retry`, after an HTML comment that
documents it. The version is the file's name; every stored verdict records it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

PROMPT_VERSION = "pairwise-v1"
RUBRICS = Path(__file__).with_name("rubrics")
NO_PURPOSE = "not stated; judge each answer as a reply to the request"
SECTIONS = ("system", "user", "retry")
PLACEHOLDERS = ("{purpose}", "{question}", "{answer_a}", "{answer_b}")
# What the judge must reply: one JSON object with a short reason and the verdict.
VERDICT_SCHEMA = {
    "type": "object",
    "properties": {"reason": {"type": "string"}, "verdict": {"type": "string", "enum": ["A", "B", "tie"]}},
    "required": ["reason", "verdict"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class Rubric:
    """One version of the judge prompt."""

    version: str
    system: str
    user: str
    retry: str

    def messages(
        self, question: str, answer_a: str, answer_b: str, purpose: str = ""
    ) -> list[dict[str, str]]:
        """The chat messages asking which of answer A and answer B serves the request better."""
        values = {
            "{purpose}": purpose.strip() or NO_PURPOSE,
            "{question}": question,
            "{answer_a}": answer_a,
            "{answer_b}": answer_b,
        }
        # One pass over the template: a placeholder inside an answer is left as the answer wrote it.
        pattern = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS))
        user = pattern.sub(lambda m: values[m.group(0)], self.user)
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]


def load_rubric(version: str = PROMPT_VERSION) -> Rubric:
    """Read rubrics/<version>.md; ValueError when it is missing or malformed."""
    path = RUBRICS / f"{version}.md"
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", version) or not path.is_file():
        known = ", ".join(sorted(p.stem for p in RUBRICS.glob("*.md")))
        raise ValueError(f"unknown judge prompt version {version!r}; known: {known}")
    text = re.sub(r"<!--.*?-->", "", path.read_text(encoding="utf-8"), flags=re.S)
    parts = re.split(r"^## (\w+)\s*$", text, flags=re.M)
    sections = {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}
    missing = [s for s in SECTIONS if not sections.get(s)]
    absent = [p for p in PLACEHOLDERS if p not in sections.get("user", "")]
    if missing or absent:
        raise ValueError(f"judge prompt {path}: missing sections {missing} or placeholders {absent}")
    return Rubric(version, sections["system"], sections["user"], sections["retry"])
