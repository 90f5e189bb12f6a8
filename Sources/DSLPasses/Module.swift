// DSLPasses: see Package.swift for this stage's role.
