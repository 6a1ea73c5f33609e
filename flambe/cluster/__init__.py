"""Clusters an experiment can run on (``flambe CONFIG --cluster cluster.yaml``)."""

from flambe.cluster.cluster import Cluster
from flambe.cluster.ray_cluster import RayCluster

__all__ = ["Cluster", "RayCluster"]
