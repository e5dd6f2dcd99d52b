"""R metafor's fixed-effect and DerSimonian-Laird results on the example of Kacker (2004).

Computed with R metafor by the statsmodels authors and stored in statsmodels
0.15.0, ``statsmodels/stats/tests/results/results_meta.py`` (``exk1_fe``,
``exk1_dl``; BSD-3, Josef Perktold), from which these numbers are copied
with the commands that produced them. metafor prints 15 significant digits;
``I2`` is in percent there.

    > y = c(61.0, 61.4 , 62.21, 62.3 , 62.34, 62.6 , 62.7 , 62.84, 65.9)
    > v = c(0.2025, 1.2100, 0.0900, 0.2025, 0.3844, 0.5625, 0.0676, 0.0225, 1.8225)
"""

Y = (61.0, 61.4, 62.21, 62.3, 62.34, 62.6, 62.7, 62.84, 65.9)
V = (0.2025, 1.2100, 0.0900, 0.2025, 0.3844, 0.5625, 0.0676, 0.0225, 1.8225)

# > res = rma(y, v, data=dat, method="FE", control=list(tol=1e-9))
FE = dict(
    b=62.5833970939982,
    se=0.107845705498231,
    zval=580.304953311515,
    QE=24.801897741835,
    QEp=0.00167935146372742,
    I2=67.744403741711,
    tau2=0,
)

# > res = rma(y, v, data=dat, method="DL", control=list(tol=1e-9))
DL = dict(
    b=62.3901386044504,
    se=0.245749668040304,
    zval=253.876797075543,
    tau2=0.288049246973751,
    QE=24.801897741835,
    QEp=0.00167935146372742,
    I2=67.744403741711,
)
