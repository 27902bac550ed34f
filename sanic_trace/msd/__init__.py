"""The mid-section-defect analysis (docs/msd.md): which upstream machines, material lots and wafer
roots the defective lots share — computed as the domain records stream past.

    population.py   the detection lots: input, facts, defects per reason (three IN-batched queries)
    genealogy.py    per lot its closure (backward) or tracked set (forward), as integer arrays
    aggregator.py   fed the domain records on their way to the chunks; builds the MsdIndex
    index.py        MsdIndex: all an analysis needs for any loss-reason filter; one blob in Redis
    analysis.py     MsdIndex + filter -> the `aggregation` object (KPI, attribution, suspects, charts)
    detail.py       detail rows a page at a time, and the CSV download
    session.py      start_analysis(): the steps above for one events request, before its records
"""
