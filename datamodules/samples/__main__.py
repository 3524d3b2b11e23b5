"""``python -m affectlab.datamodules.samples READER ROOT [KEY=VALUE ...]``: write a reader's fake release."""

from affectlab.datamodules.samples import main

main()
