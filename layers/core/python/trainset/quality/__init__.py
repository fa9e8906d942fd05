"""Label quality: gold scoring, agreement, consensus, coder reports, practice (pure)."""
