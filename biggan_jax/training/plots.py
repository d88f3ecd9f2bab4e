"""The training run's figures from metrics.jsonl: σ0 (the paper's Fig. 3), losses, D overfitting."""

import numpy as np
from etils import epath

from biggan_jax.training import metrics_log
from biggan_jax.utils import figures


def plot_training(metrics_path, out_dir) -> list[str]:
  """Writes sigma0.png (σ0 of every G and D layer over steps) and losses.png."""
  plt = figures.pyplot()
  rows = metrics_log.read_jsonl(metrics_path)
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
    figures.save_figure(fig, written[-1], dpi=80)
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
    figures.save_figure(fig, written[-1], dpi=80)
    plt.close(fig)
  return written


def plot_d_overfitting(metrics_path, path) -> bool:
  """D's mean logit on training vs held-out images over a run, and the gap.

  Brock et al. 2019, Sec. 4.2: D memorises the training set, so its scores
  on training images rise above those on held-out ones as training goes on.
  False (nothing written) when metrics.jsonl holds no such rows.
  """
  rows = [r for r in metrics_log.read_jsonl(metrics_path) if 'd_train' in r]
  if not rows:
    return False
  plt = figures.pyplot()
  steps = [r['step'] for r in rows]
  fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
  left.plot(steps, [r['d_train'] for r in rows], '-o', ms=3, label='training images')
  left.plot(steps, [r['d_heldout'] for r in rows], '-o', ms=3, label='held-out images')
  left.set_title("D's mean logit")
  left.legend()
  right.plot(steps, [r['d_gap'] for r in rows], '-o', ms=3, color='C3')
  right.axhline(0, color='grey', lw=0.8)
  right.set_title('gap: training - held-out')
  for ax in (left, right):
    ax.set_xlabel('step')
  fig.tight_layout()
  figures.save_figure(fig, path)
  plt.close(fig)
  return True
