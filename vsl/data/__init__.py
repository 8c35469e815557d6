"""Data layer: readers, dataset registry, splits, vocabularies and batching.

Data flows one way: files -> :mod:`vsl.data.readers` -> :mod:`vsl.data.registry` (named
datasets) -> :mod:`vsl.data.splits` -> :mod:`vsl.data.vocab` / :mod:`vsl.data.batching`.
Nothing here knows about models.
"""
