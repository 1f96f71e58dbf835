package io.patternalarm.iot;

/**
 * One valid IoT reading, cut down from the job's event row to what the detectors use, so the
 * shuffle to the device's subtask carries four fields instead of the whole event (a Flink POJO:
 * public fields, public no-argument constructor).
 */
public class IotReading {
    public String deviceId;
    public String transactionId;
    public double value;
    public long eventTimeMs;

    public IotReading() {}

    public IotReading(String deviceId, String transactionId, double value, long eventTimeMs) {
        this.deviceId = deviceId;
        this.transactionId = transactionId;
        this.value = value;
        this.eventTimeMs = eventTimeMs;
    }
}
