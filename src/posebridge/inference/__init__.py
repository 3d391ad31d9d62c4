"""Running a trained model: loading, lifting 2D keypoints, videos."""
