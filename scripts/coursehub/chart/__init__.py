"""The chart and what it makes: Helm, the upstream z2jh chart, rendering, the checks on values and on
rendered objects, the pods KubeSpawner builds."""
