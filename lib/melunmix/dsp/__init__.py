"""Signal processing: STFT, filterbanks and features (`features`), the multichannel Wiener
filter (`wiener`), BSS Eval v4 (`bsseval`). Plain maths on arrays and tensors; imports only
the base layer."""
