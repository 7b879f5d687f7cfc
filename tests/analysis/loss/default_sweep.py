"""A runs table shaped like the project's default sweep on CPU (conf/grid/default.yaml: 7 sizes of 33K to
783K parameters x 3 budgets, one seed), with the batch, steps and learning rate the grid derives for each
point (sweep.plan.grid.plan_training) and bf16 from d_model 72 up (train.precision=auto).

The losses where the derived batch doubles are the ones measured on that sweep (268K, 468K and 783K at
1.085M tokens: 0.799, 0.801, 0.867; 95.6K and 164K at 642K: 0.894, 1.050); the rest are made up to fall
smoothly elsewhere, with the same jumps at every other doubling of the batch."""

import polars as pl

SIZES = {  # label: (n_params, d_model)
    "s1": (32928, 32), "s2": (57632, 32), "s3": (95568, 48), "s4": (164288, 64), "s5": (267912, 72),
    "s6": (467808, 96), "s7": (782544, 112)}
N_TOKENS = {380000: 380928, 642000: 643072, 1085000: 1085440}  # budget: tokens trained (whole steps)
PLAN = {  # (label, budget): (batch_size, n_steps, lr, final_val_loss)
    ("s1", 380000): (8, 372, 0.01197, 1.300), ("s1", 642000): (8, 627, 0.01029, 1.200),
    ("s1", 1085000): (8, 1060, 0.00884, 1.120),
    ("s2", 380000): (8, 372, 0.01005, 1.160), ("s2", 642000): (8, 627, 0.00864, 1.050),
    ("s2", 1085000): (16, 530, 0.0105, 0.990),
    ("s3", 380000): (8, 372, 0.009, 1.060), ("s3", 642000): (8, 627, 0.00773, 0.894),
    ("s3", 1085000): (16, 530, 0.0094, 0.900),
    ("s4", 380000): (8, 372, 0.00784, 1.000), ("s4", 642000): (16, 314, 0.00953, 1.050),
    ("s4", 1085000): (16, 530, 0.00819, 0.840),
    ("s5", 380000): (16, 186, 0.00968, 1.120), ("s5", 642000): (16, 314, 0.00832, 0.960),
    ("s5", 1085000): (16, 530, 0.00715, 0.799),
    ("s6", 380000): (16, 186, 0.00836, 1.090), ("s6", 642000): (16, 314, 0.00719, 0.930),
    ("s6", 1085000): (16, 530, 0.00618, 0.801),
    ("s7", 380000): (16, 186, 0.00726, 1.080), ("s7", 642000): (16, 314, 0.00624, 0.950),
    ("s7", 1085000): (32, 265, 0.00758, 0.867),
}


def default_sweep_runs() -> pl.DataFrame:
    rows = []
    for (label, budget), (batch, steps, lr, loss) in PLAN.items():
        n, d_model = SIZES[label]
        rows.append({"run_id": f"{label}-D{budget}-s0", "label": label, "seed": 0, "status": "done",
                     "n_params": n, "n_tokens_budget": budget, "n_tokens": N_TOKENS[budget],
                     "flops_6nd": 6.0 * n * N_TOKENS[budget], "flops": 6.0 * n * N_TOKENS[budget],
                     "flops_spent": 6.0 * n * N_TOKENS[budget], "batch_size": batch, "n_steps": steps, "lr": lr,
                     "precision": "bf16" if d_model >= 72 else "fp32", "schedule": "cosine", "role": "independent",
                     "final_val_loss": loss})
    return pl.DataFrame(rows)
