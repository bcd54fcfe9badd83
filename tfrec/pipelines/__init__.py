"""The top floor: pipelines that wire the concept packages into train, evaluate, compress,
export, recommend, demo and bench. Nothing below `tfrec.pipelines` imports it."""
