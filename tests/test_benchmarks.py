"""benchmarks/accelerator.py --smoke: every part of the command a lent accelerator runs,
at tiny sizes on the CPU, so that the one call a lease allows does not fail on a typo."""

import json
import sys

import pytest

from paths import REPO


def test_accelerator_smoke_writes_its_rows(tmp_path, capsys, monkeypatch):
  monkeypatch.syspath_prepend(str(REPO / 'benchmarks'))
  import accelerator
  out = tmp_path / 'accelerator.json'
  assert accelerator.main(['--smoke', f'--out={out}']) == 0
  written = json.loads(out.read_text())
  assert written['smoke'] is True and written['device'].endswith('x cpu (cpu)')
  rows = {(r['part'], r.get('dtype')): r for r in written['rows']}
  for dtype in ('float32', 'bfloat16'):
    step = rows[('train step', dtype)]
    assert step['num_accumulations'] == 1 and step['auto'].endswith('(cpu reports no device '
                                                                     'memory limit)')
    assert step['images_per_s'] > 0 and step['tflops_per_s'] > 0 and step['mfu'] is None
  assert rows[('sampling', None)]['images_per_s'] > 0
  if 'pytorch_pretrained_biggan' in sys.modules or _imports('pytorch_pretrained_biggan'):
    assert rows[('sampling (pytorch-pretrained-BigGAN)', None)]['images_per_s'] > 0
  table = capsys.readouterr().out.split('| date | device | part |')[1].strip().splitlines()
  assert len(table) == 2 + len(written['rows'])  # the header's rest, the rule, the rows


def test_a_wrong_biggan_pytorch_path_is_one_line(tmp_path, capsys, monkeypatch):
  monkeypatch.syspath_prepend(str(REPO / 'benchmarks'))
  import accelerator
  assert accelerator.main(['--smoke', f'--biggan_pytorch={tmp_path}']) == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith(f'error: --biggan_pytorch={tmp_path}: no BigGAN.py there')


def _imports(name):
  try:
    __import__(name)
    return True
  except ImportError:
    return False
