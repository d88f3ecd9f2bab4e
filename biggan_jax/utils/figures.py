"""matplotlib without a display, and PNGs written atomically (local or gs://)."""

from etils import epath

from biggan_jax.utils import files


def pyplot():
  """matplotlib.pyplot on the Agg backend (training hosts have no display)."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  return plt


def save_figure(fig, path, dpi: int = 100) -> None:
  """Writes `fig` as PNG; a reader never sees a half-written file."""
  epath.Path(path).parent.mkdir(parents=True, exist_ok=True)
  with files.atomic_path(path) as tmp:
    with epath.Path(tmp).open('wb') as f:
      fig.savefig(f, format='png', dpi=dpi)
