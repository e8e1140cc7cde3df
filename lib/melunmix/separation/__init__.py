"""Estimates from a mixture: a model's separation with its Wiener filter (`separate`),
the `melunmix separate` command's files (`separate_files`), SiSEC 2018's oracles
(`oracles`)."""
