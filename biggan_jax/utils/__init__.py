"""Small helpers every package shares: atomic files, image sheets, figures."""
