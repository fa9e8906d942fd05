"""Reading corpora, gold sets and prior labels; sampling designs and estimates (pure)."""
