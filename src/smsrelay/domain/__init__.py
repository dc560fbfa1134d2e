"""Pure business rules: numbers, segments, pricing, status machine. No I/O."""
