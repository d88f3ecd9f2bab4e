"""What every CLI test asserts about bad input: one line `error: ...` on stderr."""


def one_error_line(capsys, *needles):
  """The captured stderr is one `error:` line containing every needle; returns it."""
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and err.startswith('error: '), err
  for needle in needles:
    assert needle in err, err
  return err
