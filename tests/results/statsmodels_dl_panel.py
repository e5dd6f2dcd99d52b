"""statsmodels' fixed-effect and DerSimonian-Laird results for a small panel of variants.

Six variants x four studies (NaN: the study lacks the variant), chosen to
cover heterogeneity (tau2 > 0), homogeneity (Q < df), two and three
studies, the far tail and effects at zero. Produced once with statsmodels
0.15.0 by this code, each variant on its studies present:

    import numpy as np
    from statsmodels.stats.meta_analysis import combine_effects
    for b, s in zip(BETA, SE):
        b, s = np.array(b), np.array(s)
        ok = np.isfinite(b)
        r = combine_effects(b[ok], s[ok] ** 2, method_re="dl")
        print(tuple(float(x) for x in (r.mean_effect_fe, r.sd_eff_w_fe, r.q, r.i2, r.tau2,
                                       r.mean_effect_re, r.sd_eff_w_re)))

statsmodels reports the method-of-moments tau2 and I^2 untruncated (negative
when Q < df, and the random-effects SE then NaN); DerSimonian and Laird
(1986), metafor and GWAMA truncate both at 0, where the random-effects
estimate is the fixed-effect one. Printed with ``repr`` (17 digits).
"""

nan = float("nan")

BETA = (
    (0.12, -0.05, 0.31, 0.02),      # heterogeneous: tau2 > 0
    (0.101, 0.098, 0.103, 0.099),   # homogeneous: Q < df, tau2 = 0
    (0.40, 0.10, nan, nan),         # two studies
    (-0.21, nan, -0.35, 0.05),      # three studies
    (0.8, 0.82, 0.79, 0.81),        # far tail: z about 80
    (1e-3, -2e-3, 5e-4, 0.0),       # effects near zero, one exactly 0
)
SE = (
    (0.05, 0.04, 0.06, 0.05),
    (0.02, 0.03, 0.025, 0.02),
    (0.10, 0.12, nan, nan),
    (0.07, nan, 0.09, 0.08),
    (0.02, 0.02, 0.02, 0.02),
    (0.01, 0.012, 0.011, 0.009),
)

COLUMNS = ("mean_effect_fe", "sd_eff_w_fe", "q", "i2", "tau2", "mean_effect_re", "sd_eff_w_re")
RESULTS = (
    (0.06510603588907013, 0.024233771751660582, 26.95921696574225, 0.888720803582234, 0.019319915811628518, 0.09586191840090622, 0.07390377471121014),
    (0.10033429394812679, 0.01138784427001685, 0.022982708933724894, -129.53291536046004, -0.0005318018018018005, 0.08452019805896743, nan),
    (0.27704918032786885, 0.07682212795973759, 3.688524590163933, 0.7288888888888888, 0.03279999999999999, 0.2573333333333333, 0.1498206334996025),
    (-0.16175360078118642, 0.04546448378173795, 11.856131499715191, 0.8313109128345916, 0.031217010309278346, -0.1679582972786572, 0.11200955558094661),
    (0.805, 0.01, 1.25, -1.4, -0.00023333333333333333, 0.805, 0.006454972243679028),
    (6.479701689205333e-06, 0.005160223462889998, 0.03984231669334468, -74.29682631384546, -0.00010674766291553837, 0.0018527746886092054, nan),
)
