"""JiebaTokenizer whose fingerprint follows the content of its dictionary folder.

Rasa 3.6 fingerprints a component by its config only, so a changed jieba_dict/ would
not retrain the tokenizer (nor anything after it): `rasa train` would reuse a model that
never saw the new words. Hashing the folder's files into `fingerprint_addon` fixes that.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer


def folder_digest(folder: str | Path) -> str:
    """A hash of every file name and content in folder (the files JiebaTokenizer loads)."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).glob("*")):
        if path.is_file():
            digest.update(path.name.encode("utf-8"))
            digest.update(path.read_bytes())
    return digest.hexdigest()


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=True)
class KBJiebaTokenizer(JiebaTokenizer):
    """Jieba with the knowledge base's dictionary, retrained when that dictionary changes."""

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        path = config.get("dictionary_path")
        if not path:
            return None
        if not Path(path).is_dir():
            # JiebaTokenizer globs `path/*`: a file path would silently load nothing.
            raise ValueError(f"dictionary_path must be a folder of jieba dictionaries: {path}")
        return folder_digest(path)
