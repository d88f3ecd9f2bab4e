"""Where the tests find the repository, its configs and the reference data."""

import glob
import pathlib

from biggan_jax import config as config_lib

REPO = pathlib.Path(__file__).resolve().parents[1]
TESTDATA = REPO / 'tests' / 'testdata'
CONFIG_FILES = sorted(p for p in glob.glob(str(REPO / 'configs' / '*.py'))
                      if not pathlib.Path(p).name.startswith('_'))

load_config = config_lib.from_file
