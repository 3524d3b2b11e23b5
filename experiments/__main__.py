from affectlab.experiments.cli import console

console()
