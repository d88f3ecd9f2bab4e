"""The torch-free reader of torch.save files: equal to torch.load, and safe on bad files."""

import collections
import pickle
import types

import numpy as np
import pytest

from biggan_jax.formats import torch_pickle


@pytest.mark.parametrize('legacy', [False, True])
def test_read_pth_matches_torch_load(tmp_path, legacy):
  torch = pytest.importorskip('torch')
  base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
  state = collections.OrderedDict(
      w=torch.randn(3, 2, 3, 3), t=base.t(),  # non-contiguous
      v=base[1:3, 2:],  # a view at a storage offset
      s=torch.tensor(2.5, dtype=torch.float64), n=torch.tensor(7),
      h=torch.randn(5).half(), b=torch.tensor([True, False]), e=torch.zeros(0, 3))
  module_state = torch.nn.BatchNorm2d(4).state_dict()  # carries _metadata
  state.update(module_state)
  path = tmp_path / 'x.pth'
  torch.save(state, path, _use_new_zipfile_serialization=not legacy)
  ours = torch_pickle.read_state_dict(str(path))
  theirs = torch.load(path, weights_only=True)
  assert list(ours) == list(theirs)
  for k, v in theirs.items():
    assert ours[k].dtype == v.numpy().dtype and ours[k].shape == tuple(v.shape), k
    np.testing.assert_array_equal(ours[k], v.numpy())


def test_read_pth_refuses_bad_files(tmp_path):
  torch = pytest.importorskip('torch')
  good = tmp_path / 'good.pth'
  torch.save({'a': torch.ones(1000)}, good, _use_new_zipfile_serialization=False)
  truncated = tmp_path / 'truncated.pth'
  truncated.write_bytes(good.read_bytes()[:-100])
  code = tmp_path / 'code.pth'
  code.write_bytes(pickle.dumps(types.SimpleNamespace(a=1)))
  module = tmp_path / 'module.pth'
  torch.save(torch.nn.ReLU(), module)
  not_dict = tmp_path / 'list.pth'
  torch.save([torch.ones(2)], not_dict)
  for path, why in [(truncated, 'truncated'), (code, 'not allowed|not a torch.save'),
                    (module, 'not allowed'), (not_dict, 'not a state dict'),
                    (tmp_path / 'missing.pth', 'No such file')]:
    with pytest.raises(ValueError, match=why) as e:
      torch_pickle.read_state_dict(str(path))
    message = str(e.value)
    assert message.startswith(str(path)) and '\n' not in message
