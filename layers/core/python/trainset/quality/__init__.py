"""Label quality: gold scoring, agreement, consensus, coder reports, practice (pure)."""

# The consensus EM's cap (here, free of numpy, for the API's schema and the CLI's defaults).
# EM converges linearly, slowly where answers are few: a 600-post campaign with two labels a
# post takes 80-210 iterations to settle to 1e-6. Reaching the cap is reported.
EM_MAX_ITERATIONS = 500
