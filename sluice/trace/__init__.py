"""`sluice trace`: what runs in an environment, walked back to its data, code, evidence and signature.

Delivery side, above promotion (whose readers it uses: overlays, evidence checks, signature rules)
and below the CLI. `walk.trace` walks; `report` prints the walk as text, JSON (validated against
`trace.schema.json`, shipped like the evidence schema) or Markdown for incident tickets.
"""
