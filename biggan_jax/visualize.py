"""PNG sample sheets and the paper's training plots (Fig. 3: σ0 over time)."""

import json

import numpy as np
from etils import epath


def to_uint8(images) -> np.ndarray:
  """[-1, 1] float images -> uint8."""
  return np.asarray(np.clip((np.asarray(images, np.float32) + 1.0) * 127.5 + 0.5, 0, 255),
                    np.uint8)


def image_grid(images, rows: int) -> np.ndarray:
  """(N, H, W, 3) in [-1, 1] -> one (rows*H, cols*W, 3) uint8 sheet."""
  images = to_uint8(images)
  n, h, w, c = images.shape
  cols = -(-n // rows)
  sheet = np.full((rows * h, cols * w, c), 255, np.uint8)
  for i in range(n):
    r, col = divmod(i, cols)
    sheet[r * h:(r + 1) * h, col * w:(col + 1) * w] = images[i]
  return sheet


def save_image_grid(images, path, rows: int) -> None:
  """Writes a PNG sheet to a local path or gs://."""
  from PIL import Image
  path = epath.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  with path.open('wb') as f:
    Image.fromarray(image_grid(images, rows)).save(f, format='PNG')


def read_jsonl(path) -> list[dict]:
  path = epath.Path(path)
  if not path.exists():
    return []
  return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _save_figure(fig, path) -> None:
  with epath.Path(path).open('wb') as f:
    fig.savefig(f, format='png', dpi=80)


def plot_training(metrics_path, out_dir) -> list[str]:
  """Writes sigma0.png (σ0 of every G and D layer over steps) and losses.png."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  rows = read_jsonl(metrics_path)
  written = []
  sv_rows = [r for r in rows if any(k.startswith('sv0/') for k in r)]
  if sv_rows:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, net in zip(axes, ('G', 'D')):
      keys = sorted({k for r in sv_rows for k in r if k.startswith(f'sv0/{net}/')})
      for k in keys:
        ax.plot([r['step'] for r in sv_rows], [r.get(k, np.nan) for r in sv_rows],
                lw=0.8)
      ax.set_title(f'{net}: σ0 of each layer')
      ax.set_xlabel('step')
    fig.tight_layout()
    written.append(str(epath.Path(out_dir) / 'sigma0.png'))
    _save_figure(fig, written[-1])
    plt.close(fig)
  loss_keys = ('d_loss_real', 'd_loss_fake', 'g_loss')
  loss_rows = [r for r in rows if 'g_loss' in r]
  if loss_rows:
    fig, ax = plt.subplots(figsize=(6, 4))
    for k in loss_keys:
      ax.plot([r['step'] for r in loss_rows], [r[k] for r in loss_rows], label=k)
    ax.legend()
    ax.set_xlabel('step')
    fig.tight_layout()
    written.append(str(epath.Path(out_dir) / 'losses.png'))
    _save_figure(fig, written[-1])
    plt.close(fig)
  return written
