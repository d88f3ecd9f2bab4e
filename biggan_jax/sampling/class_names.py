"""Class names: a checkpoint's own, or ImageNet's 1000 for every ImageNet model.

A checkpoint's meta 'class_names' is a list of names, or 'imagenet' for
ImageNet-1k's classes in class-id order (imagenet_classes.json, shipped
with the package: torchvision's names, WordNet ids and WordNet synonyms).
Names match case-insensitively with ' ', '_' and '-' alike, so
`--labels=goldfish,golden_retriever,207` works; for ImageNet a WordNet id
(n01443537) or a synonym (Carassius auratus, as pytorch-pretrained-BigGAN's
`one_hot_from_names` finds classes through WordNet) does too. A synonym that
several classes share is an error naming them, never a silent pick.
"""

import functools
import importlib.resources
import json
import re

IMAGENET = 'imagenet'
# Converted before converters recorded class_names: these sources are ImageNet-only.
_IMAGENET_SOURCES = ('huggingface', 'tfhub')


@functools.cache
def imagenet_classes() -> tuple[dict, ...]:
  """ImageNet-1k's classes ({'wnid', 'name', 'synonyms'}) in class-id order."""
  text = importlib.resources.files('biggan_jax.sampling').joinpath(
      'imagenet_classes.json').read_text(encoding='utf-8')
  return tuple(json.loads(text)['classes'])


def imagenet_names() -> list[str]:
  return [c['name'] for c in imagenet_classes()]


def _key(name: str) -> str:
  return re.sub(r'[\s_\-]+', ' ', name.strip().lower())


def names_for(meta: dict, num_classes: int) -> list[str] | None:
  """The class names a checkpoint's meta gives (a list, 'imagenet'), or None."""
  names = meta.get('class_names')
  if names is None and meta.get('source') in _IMAGENET_SOURCES and num_classes == 1000:
    names = IMAGENET
  if names == IMAGENET:
    return imagenet_names() if num_classes == 1000 else None
  if isinstance(names, (list, tuple)) and len(names) == num_classes:
    return [str(n) for n in names]
  return None


class ClassIndex:
  """Name -> class id for one model's names (and, for ImageNet, wnids and synonyms)."""

  def __init__(self, names: list[str] | None):
    self.names = names
    self._exact, self._other = {}, {}
    for i, name in enumerate(names or []):
      self._exact.setdefault(_key(name), i)
    if names is not None and names == imagenet_names():
      for i, c in enumerate(imagenet_classes()):
        for alias in (c['wnid'], *c['synonyms']):
          self._other.setdefault(_key(alias), set()).add(i)

  def lookup(self, name: str) -> int | None:
    """The id of `name`; None when no class has it; ValueError when it is ambiguous."""
    key = _key(name)
    if key in self._exact:
      return self._exact[key]
    ids = sorted(self._other.get(key, ()))
    if len(ids) > 1:
      listed = ', '.join(f'{i} ({self.names[i]})' for i in ids)
      raise ValueError(f'class {name!r} is ambiguous: it names {listed}; give one of '
                       'those ids or names')
    return ids[0] if ids else None
