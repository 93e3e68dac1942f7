"""The timing study of "Docker use case for HEP" (`ocibuild bench`): the study workload, targets
as data, job scripts, Slurm submission and following, TimeTracker databases, Table 2 and the plots.

    run_bench(BenchRequest(find_target("cori"), image=REF))  -> BenchRun in bench/results/<run-id>/
    table2(load_inputs(["native=a.db", "cori=b.db"]))        -> the paper's Table 2 rows
"""
