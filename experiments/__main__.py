from affectlab.experiments.launcher import console

console()
